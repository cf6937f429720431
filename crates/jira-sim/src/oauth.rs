//! OAuth 2.0 (3LO) authorization server of the simulator.

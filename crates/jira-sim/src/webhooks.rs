//! Admin and dynamic webhooks of the simulator: registration and delivery.

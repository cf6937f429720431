//! Summary and description limits and the overflow policy.

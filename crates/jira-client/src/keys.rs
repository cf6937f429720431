//! Issue-key extraction from free text.

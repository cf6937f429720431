//! JQL builder.

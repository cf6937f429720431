//! Helpers that check simulator and client output against official schemas (tests only).

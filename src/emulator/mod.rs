//! The Responses-API-compatible emulator server.

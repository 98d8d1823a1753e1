//! The Responses API client.

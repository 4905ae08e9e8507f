//! Access token cache (todo)

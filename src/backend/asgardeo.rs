//! Asgardeo client (todo)

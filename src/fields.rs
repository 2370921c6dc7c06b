//! Zoho field metadata and value coercion (in progress).

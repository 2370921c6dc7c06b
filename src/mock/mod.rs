//! Embedded Zoho-compatible mock CRM (in progress).

//! Progress reporting for transfers (placeholder).

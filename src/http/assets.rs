//! The dashboard's files, in the binary: no build step at run time, nothing fetched, so it works
//! offline.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("assets/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("assets/app.css")),
    ("device.html", "text/html; charset=utf-8", include_bytes!("assets/device.html")),
    ("device.js", "text/javascript; charset=utf-8", include_bytes!("assets/device.js")),
    // The kernel the native path compiles, the same bytes: the page builds its pipeline of it.
    ("sha256d.wgsl", "text/plain; charset=utf-8", crate::gpu::kernel::SOURCE.as_bytes()),
    ("favicon.svg", "image/svg+xml", include_bytes!("assets/favicon.svg")),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("assets/vendor/uPlot.iife.min.js")),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8", include_bytes!("assets/vendor/uPlot.min.css")),
];

/// The page's scripts and styles come from here only; nothing inline, nothing framed.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

pub fn page(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CONTENT_SECURITY_POLICY, POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

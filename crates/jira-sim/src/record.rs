//! Recording of REST exchanges as JSON lines (validated by the conformance suite).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use axum::http::Method;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::Flavor;

pub(crate) struct Recorder {
    file: Mutex<File>,
}

fn body_value(b: Option<&[u8]>) -> Value {
    match b {
        None => Value::Null,
        Some([]) => Value::Null,
        Some(bytes) => serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

impl Recorder {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Recorder {
            file: Mutex::new(file),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        status: u16,
        request_body: Option<&[u8]>,
        response_body: &[u8],
        flavor: Flavor,
        gateway: bool,
    ) {
        let mut line = json!({
            "method": method.as_str(),
            "path": path,
            "query": query.unwrap_or(""),
            "status": status,
            "request_body": body_value(request_body),
            "response_body": body_value(Some(response_body)),
            "flavor": match flavor { Flavor::Cloud => "cloud", Flavor::DataCenter => "dc" },
        });
        if gateway {
            // Came through `/ex/jira/{cloudId}` (OAuth): 401s there are the gateway's
            // `{"code","message"}` bodies, not Jira's.
            line["via"] = json!("gateway");
        }
        let mut f = self.file.lock();
        let _ = writeln!(f, "{line}");
    }
}

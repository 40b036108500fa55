//! `brainseg view`: the page and the case's volumes served on 127.0.0.1 until the process stops.
use crate::page::{build, Delivery, Layer};
use brainseg_core::LabelNumbering;
use brainseg_volume::{read_label_msd, Dataset, Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;

const LICENCE: &str = include_str!("../../../viewer/LICENSE-niivue.txt");

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct ViewOptions {
    /// A BraTS case folder, a 4-D NIfTI, or a dataset folder.
    pub input: PathBuf,
    /// The case within a dataset (default: the first).
    pub case: Option<String>,
    /// A ground-truth label map instead of the case's own.
    pub truth: Option<PathBuf>,
    /// A predicted label map.
    pub pred: Option<PathBuf>,
    /// Numbering of `truth` and `pred` (default: detected).
    pub numbering: Option<LabelNumbering>,
    /// Port on 127.0.0.1 (default: a free one).
    pub port: Option<u16>,
}

/// A viewer ready to serve: the case is loaded and the port bound.
pub struct Viewer {
    server: tiny_http::Server,
    files: HashMap<String, (&'static str, Vec<u8>)>,
    url: String,
    /// What is shown, for the command to print.
    pub summary: String,
}

impl Viewer {
    /// Loads the case and its label maps, builds the page and binds the port.
    pub fn open(options: &ViewOptions) -> Result<Viewer> {
        crate::page::niivue_bundle()?;
        let dataset = Dataset::open(&options.input)?;
        let case_ref = match &options.case {
            Some(id) => dataset.case(id).ok_or_else(|| {
                Error::at(&options.input, format!("no case {id} in this dataset"))
            })?,
            None => dataset
                .cases
                .first()
                .ok_or_else(|| Error::at(&options.input, "no cases here"))?,
        };
        let case = case_ref.load()?;
        let (_, x, y, z) = case.image.dim();
        let read = |path: &PathBuf| read_label_msd(path, options.numbering, Some([x, y, z]));
        let truth = match &options.truth {
            Some(path) => Some(read(path)?.labels),
            None => case.label.clone(),
        };
        let pred = options
            .pred
            .as_ref()
            .map(read)
            .transpose()?
            .map(|m| m.labels);
        let mut layers = Vec::new();
        if let Some(labels) = &truth {
            layers.push(Layer {
                name: "ground truth",
                file: "truth",
                labels,
            });
        }
        if let Some(labels) = &pred {
            layers.push(Layer {
                name: "prediction",
                file: "prediction",
                labels,
            });
        }
        let page = build(&case, &layers, Delivery::Served)?;
        let mut files: HashMap<String, (&'static str, Vec<u8>)> = page
            .files
            .into_iter()
            .map(|(name, bytes)| {
                (
                    format!("/volumes/{name}"),
                    ("application/octet-stream", bytes),
                )
            })
            .collect();
        files.insert(
            "/".into(),
            ("text/html; charset=utf-8", page.html.into_bytes()),
        );
        let bundle = crate::page::niivue_bundle()?.as_bytes().to_vec();
        files.insert(
            "/niivue.umd.js".into(),
            ("text/javascript; charset=utf-8", bundle),
        );
        files.insert(
            "/LICENSE-niivue.txt".into(),
            ("text/plain; charset=utf-8", LICENCE.as_bytes().to_vec()),
        );
        let address = format!("127.0.0.1:{}", options.port.unwrap_or(0));
        let server = tiny_http::Server::http(&address)
            .map_err(|e| Error::msg(format!("cannot listen on {address}: {e}")))?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| Error::msg(format!("cannot listen on {address}: not an IP socket")))?;
        let shown: Vec<&str> = layers.iter().map(|l| l.name).collect();
        Ok(Viewer {
            server,
            files,
            url: format!("http://127.0.0.1:{port}/"),
            summary: format!(
                "case {} with {}",
                case.id,
                if shown.is_empty() {
                    "no label maps".to_string()
                } else {
                    shown.join(" and ")
                }
            ),
        })
    }

    /// The page's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers requests until the process is stopped (Ctrl-C).
    pub fn serve(self) -> Result<()> {
        for request in self.server.incoming_requests() {
            let path = request
                .url()
                .split(['?', '#'])
                .next()
                .unwrap_or("/")
                .to_string();
            let response = match self.files.get(&path) {
                Some((kind, bytes)) => tiny_http::Response::from_data(bytes.clone())
                    .with_header(header("Content-Type", kind))
                    .with_header(header("Cache-Control", "no-store")),
                None => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
            };
            // A browser that went away is not an error of the viewer.
            let _ = request.respond(response);
        }
        Ok(())
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

//! `brainseg view`: the page and the case's volumes served on 127.0.0.1 until the process stops.
use crate::page::{build, Delivery, Layer};
use crate::{Error, Result};
use brainseg_core::LabelNumbering;
use brainseg_volume::{read_label_msd, Dataset};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// The page's files by URL path: content type and bytes.
type Files = HashMap<String, (&'static str, Vec<u8>)>;

/// A viewer ready to serve: the case is loaded and the port bound.
pub struct Viewer {
    listener: TcpListener,
    files: Files,
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
        let mut files: Files = page
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
        let cannot = |e: std::io::Error| Error::msg(format!("cannot listen on {address}: {e}"));
        let listener = TcpListener::bind(&address).map_err(cannot)?;
        let port = listener.local_addr().map_err(cannot)?.port();
        let shown: Vec<&str> = layers.iter().map(|l| l.name).collect();
        Ok(Viewer {
            listener,
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
    ///
    /// A thread per connection and one request per connection (`Connection: close`). tiny_http
    /// was tried first: its pool of four threads each holds a browser's keep-alive connection,
    /// and Chromium's fifth and sixth connections then wait forever (seen in the viewer test).
    pub fn serve(self) -> Result<()> {
        let files = Arc::new(self.files);
        for stream in self.listener.incoming() {
            // A connection that failed to open is the browser's affair, not the viewer's.
            let Ok(stream) = stream else { continue };
            let files = Arc::clone(&files);
            std::thread::spawn(move || {
                // A browser that went away is not an error of the viewer.
                let _ = answer(&stream, &files);
            });
        }
        Ok(())
    }
}

/// Reads one request from `stream` and sends the file it names (GET or HEAD), a 404 or a 405.
fn answer(stream: &TcpStream, files: &Files) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // A request larger than this is not one of the page's.
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim_end().is_empty() {
            break;
        }
    }
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words
        .next()
        .unwrap_or("/")
        .split(['?', '#'])
        .next()
        .unwrap_or("/");
    let (status, kind, body): (&str, &str, &[u8]) = match (method, files.get(path)) {
        ("GET" | "HEAD", Some((kind, bytes))) => ("200 OK", kind, bytes),
        ("GET" | "HEAD", None) => ("404 Not Found", "text/plain", b"not found"),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            b"method not allowed",
        ),
    };
    let mut out = BufWriter::new(stream);
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body)?;
    }
    out.flush()
}

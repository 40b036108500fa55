//! A self-contained HTML report: a title and sections of text, tables and pictures, the pictures embedded as
//! base64 data URIs so the one file can be mailed or archived as it is.
use std::path::Path;

use base64::Engine;

use crate::image::write_atomic;
use crate::Result;

/// A report under construction; [`HtmlReport::write`] saves it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HtmlReport {
    title: String,
    sections: Vec<Section>,
}

/// One headed part of a report; its blocks appear in the order they were added.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    heading: String,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
enum Block {
    /// Paragraphs separated by blank lines.
    Text(String),
    /// Shown as is in a monospaced font (e.g. a plain-text table).
    Preformatted(String),
    Table {
        /// Column groups over the header, each a name and the columns it spans (empty: none).
        groups: Vec<(String, usize)>,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A collapsed block: a one-line summary that opens onto preformatted text.
    Details { summary: String, text: String },
    Image {
        caption: String,
        mime: &'static str,
        bytes: Vec<u8>,
    },
    /// A whole HTML page (an interactive viewer) in an inline frame, inside this file.
    Page { caption: String, html: String },
}

impl HtmlReport {
    pub fn new(title: impl Into<String>) -> Self {
        HtmlReport {
            title: title.into(),
            sections: Vec::new(),
        }
    }

    pub fn section(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }

    /// The whole page as one string.
    pub fn to_html(&self) -> String {
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        for section in &self.sections {
            html += &format!("<section>\n<h2>{}</h2>\n", escape(&section.heading));
            for block in &section.blocks {
                html += &block.to_html();
            }
            html += "</section>\n";
        }
        html + "<script>" + VIEWER_LISTENER + "</script>\n</body>\n</html>\n"
    }

    /// Writes the page to `path` atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        Ok(write_atomic(path, self.to_html().as_bytes())?)
    }
}

impl Section {
    pub fn new(heading: impl Into<String>) -> Self {
        Section {
            heading: heading.into(),
            blocks: Vec::new(),
        }
    }

    /// Prose; blank lines separate paragraphs.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Text(text.into()));
        self
    }

    /// Text kept as is in a monospaced font, such as `brainseg_metrics::Summary::to_text`.
    pub fn preformatted(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Preformatted(text.into()));
        self
    }

    /// An HTML table with a header row. Cells holding a number (or "-" for none) align right, others left.
    pub fn table(mut self, header: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        self.blocks.push(Block::Table {
            groups: Vec::new(),
            header,
            rows,
        });
        self
    }

    /// A table whose header has a row of column groups above the column names: each group a name and the
    /// number of columns it spans, from the first column on (a group with an empty name leaves its columns plain).
    pub fn grouped_table(
        mut self,
        groups: Vec<(String, usize)>,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    ) -> Self {
        self.blocks.push(Block::Table {
            groups,
            header,
            rows,
        });
        self
    }

    /// A collapsed block: `summary` on one line, opening onto `text` in a monospaced font.
    pub fn details(mut self, summary: impl Into<String>, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Details {
            summary: summary.into(),
            text: text.into(),
        });
        self
    }

    /// A PNG picture (file bytes) with a caption.
    pub fn png(mut self, caption: impl Into<String>, bytes: Vec<u8>) -> Self {
        self.blocks.push(Block::Image {
            caption: caption.into(),
            mime: "image/png",
            bytes,
        });
        self
    }

    /// A self-contained HTML page (e.g. `brainseg_viewer::embedded_viewer_html`) shown in a frame
    /// of the report, with a caption. The report's <body data-viewers-loaded> counts the frames
    /// that posted `{brainsegViewer: "loaded"}` to it (the viewer does when its volumes are drawn).
    pub fn page(mut self, caption: impl Into<String>, html: String) -> Self {
        self.blocks.push(Block::Page {
            caption: caption.into(),
            html,
        });
        self
    }

    /// A GIF animation (file bytes) with a caption.
    pub fn gif(mut self, caption: impl Into<String>, bytes: Vec<u8>) -> Self {
        self.blocks.push(Block::Image {
            caption: caption.into(),
            mime: "image/gif",
            bytes,
        });
        self
    }
}

impl Block {
    fn to_html(&self) -> String {
        match self {
            Block::Text(text) => text
                .split("\n\n")
                .filter(|paragraph| !paragraph.trim().is_empty())
                .map(|paragraph| format!("<p>{}</p>\n", escape(paragraph.trim())))
                .collect(),
            Block::Preformatted(text) => format!("<pre>{}</pre>\n", escape(text)),
            Block::Table { groups, header, rows } => {
                let cells = |row: &[String], tag: &str| -> String {
                    row.iter().map(|cell| format!("<{tag}>{}</{tag}>", escape(cell))).collect()
                };
                // Numbers (and the dash of a missing one) align right, words left.
                let data = |row: &[String]| -> String {
                    row.iter()
                        .map(|cell| {
                            let number = cell == "-" || cell.parse::<f64>().is_ok();
                            let class = if number { " class=\"n\"" } else { "" };
                            format!("<td{class}>{}</td>", escape(cell))
                        })
                        .collect()
                };
                let body: String = rows.iter().map(|row| format!("<tr>{}</tr>\n", data(row))).collect();
                let group_row = if groups.is_empty() {
                    String::new()
                } else {
                    let spans: String = groups
                        .iter()
                        .map(|(name, span)| {
                            let class = if name.is_empty() { "" } else { " class=\"group\"" };
                            format!("<th colspan=\"{span}\"{class}>{}</th>", escape(name))
                        })
                        .collect();
                    format!("<tr>{spans}</tr>")
                };
                format!(
                    "<table>\n<thead>{group_row}<tr>{}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n",
                    cells(header, "th")
                )
            }
            Block::Details { summary, text } => format!(
                "<details><summary>{}</summary><pre>{}</pre></details>\n",
                escape(summary),
                escape(text)
            ),
            Block::Page { caption, html } => format!(
                "<figure><iframe class=\"viewer\" title=\"{}\" srcdoc=\"{}\"></iframe><figcaption>{}</figcaption></figure>\n",
                escape(caption),
                escape(html),
                escape(caption)
            ),
            Block::Image { caption, mime, bytes } => format!(
                "<figure><img src=\"data:{mime};base64,{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                base64::engine::general_purpose::STANDARD.encode(bytes),
                escape(caption),
                escape(caption)
            ),
        }
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:100em;color:#222;line-height:1.4}\
h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.6em}\
pre{background:#f4f4f4;padding:1em;overflow-x:auto}\
table{border-collapse:collapse;margin:0.8em 0}\
td,th{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;font-variant-numeric:tabular-nums}\
td.n{text-align:right}th{background:#eee;text-align:center}th:first-child{text-align:left}\
th.group{background:#e2e8f0}\
tbody tr:nth-child(even){background:#fafafa}\
details{margin:0.8em 0}summary{cursor:pointer;color:#555}\
figure{margin:1.2em 0}iframe.viewer{width:100%;height:760px;border:1px solid #ccc}figcaption{color:#444;margin-top:0.3em}img{max-width:100%;image-rendering:pixelated}";

/// Counts the embedded viewers that have drawn their volumes on <body data-viewers-loaded>, keeps
/// their errors in data-viewer-errors and the last one's canvas rectangle in the page (x, y,
/// width, height) in data-viewer-canvas, for tests and scripts that look at the page.
const VIEWER_LISTENER: &str = "(function(){var b=document.body;b.dataset.viewersLoaded='0';b.dataset.viewerErrors='';\
addEventListener('message',function(e){var m=e.data||{};\
if(m.brainsegViewer==='loaded'){b.dataset.viewersLoaded=String(Number(b.dataset.viewersLoaded)+1);\
var f=[].find.call(document.querySelectorAll('iframe.viewer'),function(f){return f.contentWindow===e.source;});\
if(f&&m.canvas){var r=f.getBoundingClientRect();\
b.dataset.viewerCanvas=[r.left+f.clientLeft+m.canvas[0],r.top+f.clientTop+m.canvas[1],m.canvas[2],m.canvas[3]].map(Math.round).join(',');}}\
else if(m.brainsegViewer==='failed'){b.dataset.viewerErrors+=(b.dataset.viewerErrors?' | ':'')+m.error;}});})();";

/// Text safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RgbImage;

    #[test]
    fn report_embeds_pictures_and_escapes_text() {
        let png = RgbImage::new(2, 2, [255, 0, 0]).to_png();
        let gif_bytes = b"GIF89a-not-decoded-here".to_vec();
        let report = HtmlReport::new("Case <1>")
            .section(
                Section::new("Metrics")
                    .text("Dice & HD95.\n\nSecond paragraph.")
                    .preformatted("a  | b\n1  | 2")
                    .table(
                        vec!["class".into(), "Dice".into()],
                        vec![vec!["edema".into(), "0.91".into()]],
                    )
                    .grouped_table(
                        vec![("".into(), 1), ("WT".into(), 2)],
                        vec!["case".into(), "Dice".into(), "HD95".into()],
                        vec![vec!["a<b".into(), "0.5".into(), "3.00".into()]],
                    )
                    .details("config.json", "{\"a\": 1}"),
            )
            .section(
                Section::new("Pictures")
                    .png("grid", png.clone())
                    .gif("stepper", gif_bytes.clone()),
            );
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("report.html");
        report.write(&path).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.contains("<title>Case &lt;1&gt;</title>"));
        assert!(html.contains("<p>Dice &amp; HD95.</p>\n<p>Second paragraph.</p>"));
        assert!(html.contains("<pre>a  | b\n1  | 2</pre>"));
        assert!(html.contains("<tr><td>edema</td><td class=\"n\">0.91</td></tr>"));
        assert!(html.contains(
            "<thead><tr><th colspan=\"1\"></th><th colspan=\"2\" class=\"group\">WT</th></tr>\
             <tr><th>case</th><th>Dice</th><th>HD95</th></tr></thead>"
        ));
        assert!(html
            .contains("<tr><td>a&lt;b</td><td class=\"n\">0.5</td><td class=\"n\">3.00</td></tr>"));
        assert!(html.contains(
            "<details><summary>config.json</summary><pre>{&quot;a&quot;: 1}</pre></details>"
        ));
        let engine = base64::engine::general_purpose::STANDARD;
        assert!(html.contains(&format!(
            "src=\"data:image/png;base64,{}\"",
            engine.encode(&png)
        )));
        assert!(html.contains(&format!(
            "src=\"data:image/gif;base64,{}\"",
            engine.encode(&gif_bytes)
        )));
        // The embedded PNG decodes back to the picture.
        let start = html.find("data:image/png;base64,").unwrap() + "data:image/png;base64,".len();
        let end = start + html[start..].find('"').unwrap();
        let decoded = RgbImage::from_png(&engine.decode(&html[start..end]).unwrap()).unwrap();
        assert_eq!(decoded.pixel(1, 1), [255, 0, 0]);
        assert!(
            !html.contains("src=\"http"),
            "nothing is fetched from elsewhere"
        );
    }
}

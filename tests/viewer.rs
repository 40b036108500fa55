//! `brainseg view` in headless Chromium on a real case with its ground truth: the page says it loaded
//! every volume and met no error, and a screenshot shows the three class colours over the tumour.
//! The self-contained page (for reports) opens from disk the same way. Skipped, with a note, where
//! Chromium, the NiiVue bundle (`npm ci --prefix viewer`) or the shared data are missing.
use brainseg_visualize::RgbImage;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CASE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/brats2018/Brats18_2013_2_1"
);

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Chromium, NiiVue and the case, or why the test cannot run.
fn ready() -> Option<PathBuf> {
    let skip = |why: &str| {
        eprintln!("note: viewer test skipped: {why}");
        None
    };
    if brainseg_viewer::niivue_bundle().is_err() {
        return skip("no NiiVue bundle built in (npm ci --prefix viewer, then rebuild)");
    }
    if !Path::new(CASE).is_dir() {
        return skip(&format!("no case at {CASE}"));
    }
    chromium().or_else(|| skip("no chromium on PATH (apt-get install chromium)"))
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs headless Chromium (WebGL2 in software through SwiftShader) on `url` with `extra` flags;
/// returns stdout and the console lines it logged.
fn run_chromium(browser: &Path, url: &str, extra: &[String]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,800",
            "--virtual-time-budget=60000",
            // Headless screenshots then include every compositor stage drawn before the capture.
            "--run-all-compositor-stages-before-draw",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        // Files, not pipes: the DOM and the log outgrow a pipe's buffer, and Chromium would block
        // writing to a pipe nobody reads until it exits.
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("chromium did not finish within 300 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let stderr = String::from_utf8_lossy(&std::fs::read(&stderr_path).unwrap()).into_owned();
    let console = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    (
        String::from_utf8_lossy(&std::fs::read(&stdout_path).unwrap()).into_owned(),
        console,
    )
}

/// How often a page is loaded before an unfinished one counts as a failure: the served page, whose
/// volumes arrive over HTTP, is caught unfinished in about half the runs on a busy 2-core machine.
const TRIES: usize = 6;

/// The page's DOM once `done` says it has finished (loaded or failed). Headless Chromium dumps the
/// DOM when its virtual-time budget runs out, which on a busy machine sometimes comes before the
/// volumes are drawn (virtual time does not wait for WebGL work in the GPU process): an unfinished
/// page is loaded again, up to `TRIES` times in all.
fn finished_dom(
    browser: &Path,
    url: &str,
    extra: &[String],
    done: impl Fn(&str) -> bool,
) -> (String, Vec<String>) {
    let args = [&["--dump-dom".to_string()], extra].concat();
    let mut attempt = 1;
    loop {
        let (dom, console) = run_chromium(browser, url, &args);
        if done(&dom) || attempt == TRIES {
            return (dom, console);
        }
        eprintln!("note: dump {attempt} of {url} came before the page finished; again");
        attempt += 1;
    }
}

/// An attribute of the page's <body>, from Chromium's --dump-dom.
fn body_attribute(dom: &str, name: &str) -> Option<String> {
    let body = &dom[dom.find("<body")?..];
    let body = &body[..body.find('>')?];
    let start = body.find(&format!("{name}=\""))? + name.len() + 2;
    Some(body[start..start + body[start..].find('"')?].to_string())
}

/// Checks the page state --dump-dom shows; returns the canvas rectangle (x, y, width, height).
fn check_loaded(dom: &str, console: &[String], volumes: &str) -> [usize; 4] {
    let title = dom
        .find("<title>")
        .map(|at| &dom[at + 7..at + 7 + dom[at..].find("</title>").unwrap() - 7])
        .unwrap_or("");
    assert_eq!(
        body_attribute(dom, "data-errors").as_deref(),
        Some(""),
        "page errors; title {title}"
    );
    assert_eq!(
        body_attribute(dom, "data-loaded").as_deref(),
        Some(volumes),
        "title {title}"
    );
    assert!(title.ends_with("(loaded)"), "title {title}");
    let errors: Vec<_> = console
        .iter()
        .filter(|l| l.contains("Uncaught") || l.contains(":ERROR:CONSOLE") || l.contains("Error:"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let canvas: Vec<usize> = body_attribute(dom, "data-canvas")
        .expect("the page gives the canvas rectangle")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    canvas.try_into().unwrap()
}

/// Pixels of the screenshot inside the canvas clearly red, green and blue (the class colours
/// blended over grey); the legend's swatches lie outside the canvas.
fn class_pixels(png: &Path, [x0, y0, w, h]: [usize; 4]) -> [usize; 3] {
    let image = RgbImage::from_png(&std::fs::read(png).unwrap()).unwrap();
    let mut counts = [0; 3];
    for y in y0..(y0 + h).min(image.height) {
        for x in x0..(x0 + w).min(image.width) {
            let p = image.pixel(x, y).map(i32::from);
            for c in 0..3 {
                let (a, b) = (p[(c + 1) % 3], p[(c + 2) % 3]);
                if p[c] > 140 && p[c] > a + 60 && p[c] > b + 60 {
                    counts[c] += 1;
                }
            }
        }
    }
    counts
}

fn check_screenshot(browser: &Path, url: &str, canvas: [usize; 4], extra: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("viewer.png");
    // Headless Chromium takes the screenshot when its virtual-time budget runs out, which
    // sometimes comes before the served volumes are drawn (the --dump-dom run above proved they
    // load): a blank canvas is tried again, up to `TRIES` times in all, before it counts as a failure.
    let mut counts = [0; 3];
    for attempt in 1..=TRIES {
        let (_, console) = run_chromium(
            browser,
            url,
            &[&[format!("--screenshot={}", shot.display())], extra].concat(),
        );
        assert!(shot.is_file(), "no screenshot; console: {console:#?}");
        counts = class_pixels(&shot, canvas);
        eprintln!("class-coloured pixels (edema, non-enhancing, enhancing): {counts:?}");
        if counts != [0; 3] {
            break;
        }
        eprintln!("note: screenshot {attempt} shows no overlay yet");
    }
    if let Some(keep) = std::env::var_os("BRAINSEG_VIEWER_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    for (count, class) in counts.iter().zip(["edema", "non-enhancing", "enhancing"]) {
        assert!(
            *count >= 30,
            "only {count} {class} pixels in the screenshot: {counts:?}"
        );
    }
}

#[test]
fn view_serves_the_case_with_its_ground_truth_to_chromium() {
    let Some(browser) = ready() else { return };
    let mut server = Killed(
        Command::new(env!("CARGO_BIN_EXE_brainseg"))
            .args(["view", CASE])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("brainseg runs"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    assert!(line.contains("ground truth"), "{line}");
    // Four modalities and the ground truth.
    let (dom, console) = finished_dom(&browser, &url, &[], |dom| {
        body_attribute(dom, "data-loaded").is_some()
            || body_attribute(dom, "data-errors").is_some_and(|e| !e.is_empty())
    });
    let canvas = check_loaded(&dom, &console, "5");
    check_screenshot(&browser, &url, canvas, &[]);
}

#[test]
fn embedded_page_opens_from_disk() {
    let Some(browser) = ready() else { return };
    let dataset = brainseg_volume::Dataset::open(Path::new(CASE)).unwrap();
    let case = dataset.cases[0].load().unwrap();
    let html = brainseg_viewer::embedded_viewer_html(&case, case.label.as_ref(), None).unwrap();
    let megabytes = html.len() as f64 / 1e6;
    eprintln!("self-contained page: {megabytes:.1} MB");
    assert!(megabytes < 15.0, "{megabytes:.1} MB");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("viewer.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let (dom, console) = finished_dom(&browser, &url, &[], |dom| {
        body_attribute(dom, "data-loaded").is_some()
            || body_attribute(dom, "data-errors").is_some_and(|e| !e.is_empty())
    });
    let canvas = check_loaded(&dom, &console, "5");
    check_screenshot(&browser, &url, canvas, &[]);
}

#[test]
fn report_embeds_the_viewer_with_its_volumes() {
    let Some(browser) = ready() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The case's own segmentation stands in for a prediction.
    let predictions = dir.path().join("predictions");
    std::fs::create_dir(&predictions).unwrap();
    std::fs::copy(
        format!("{CASE}/Brats18_2013_2_1_seg.nii.gz"),
        predictions.join("Brats18_2013_2_1.nii.gz"),
    )
    .unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_brainseg"))
        .arg("report")
        .arg(&predictions)
        .arg("--images")
        .arg(CASE)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let report = predictions.join("report.html");
    let megabytes = std::fs::metadata(&report).unwrap().len() as f64 / 1e6;
    eprintln!("report with one viewer: {megabytes:.1} MB");
    assert!(megabytes < 16.0, "{megabytes:.1} MB");
    let url = format!("file://{}", report.display());
    // Tall enough that the viewer's frame, below the predictions table, is on screen.
    let tall = ["--window-size=1280,2000".to_string()];
    let (dom, console) = finished_dom(&browser, &url, &tall, |dom| {
        body_attribute(dom, "data-viewers-loaded").is_some_and(|n| n != "0")
            || body_attribute(dom, "data-viewer-errors").is_some_and(|e| !e.is_empty())
    });
    assert_eq!(
        body_attribute(&dom, "data-viewer-errors").as_deref(),
        Some("")
    );
    assert_eq!(
        body_attribute(&dom, "data-viewers-loaded").as_deref(),
        Some("1")
    );
    let errors: Vec<_> = console
        .iter()
        .filter(|l| l.contains("Uncaught") || l.contains(":ERROR:CONSOLE"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let canvas: Vec<usize> = body_attribute(&dom, "data-viewer-canvas")
        .expect("the report gives the viewer's canvas rectangle")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    check_screenshot(&browser, &url, canvas.try_into().unwrap(), &tall);
}

//! Aggregates over cases (mean, median, standard deviation per metric, undefined values left out and counted)
//! and their renderings: an aligned text table, CSV, JSON, and the seed's sensitivity/specificity table. Every
//! rendering says which HD95 convention its `hd95` values follow ([`Summary::hd95_convention`]).
use serde::{Deserialize, Serialize};

use crate::case::hd95_convention_before_it_was_recorded;
use crate::{CaseMetrics, Class, Error, HausdorffConvention, Region, Result, SensSpec};

/// Metric keys (CSV columns, [`MetricStats::metric`]), in table order. The `*_hd95` values follow the summary's
/// [`Summary::hd95_convention`], which the CSV writes in a last column, `hd95_convention`.
pub const METRIC_KEYS: [&str; 15] = [
    "edema_dice",
    "edema_sensitivity",
    "edema_specificity",
    "non_enhancing_dice",
    "non_enhancing_sensitivity",
    "non_enhancing_specificity",
    "enhancing_dice",
    "enhancing_sensitivity",
    "enhancing_specificity",
    "wt_dice",
    "wt_hd95",
    "tc_dice",
    "tc_hd95",
    "et_dice",
    "et_hd95",
];

/// One scored case and its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    pub case: String,
    pub metrics: CaseMetrics,
}

/// Statistics of one metric over the cases where it is defined. `std` is the population standard deviation
/// (NumPy's default); each statistic is `None` when no case defines the metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    pub metric: String,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub std: Option<f64>,
    /// Cases that define the metric.
    pub defined: usize,
    /// Cases where it is undefined (e.g. sensitivity of a class absent from the ground truth).
    pub undefined: usize,
}

/// Every case's metrics and their aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The HD95 convention of every case, so of the `*_hd95` statistics. Serialised as
    /// `"hd95_convention": "directed_max"` or `"pooled"`; a summary saved before this field existed reads back as
    /// [`HausdorffConvention::Pooled`], which is what was computed then.
    #[serde(default = "hd95_convention_before_it_was_recorded")]
    pub hd95_convention: HausdorffConvention,
    pub cases: Vec<CaseRow>,
    /// One entry per [`METRIC_KEYS`] entry, in that order.
    pub metrics: Vec<MetricStats>,
}

impl Summary {
    /// Aggregates `cases`, which must share one HD95 convention (the default one with no cases).
    ///
    /// Panics when the cases mix conventions; [`Summary::try_new`] returns an error instead.
    pub fn new(cases: Vec<CaseRow>) -> Self {
        Self::try_new(cases).unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`Summary::new`], with an error when the cases mix HD95 conventions (their statistics would mean nothing).
    pub fn try_new(cases: Vec<CaseRow>) -> Result<Self> {
        let hd95_convention = cases
            .first()
            .map_or_else(HausdorffConvention::default, |row| {
                row.metrics.hd95_convention
            });
        if let Some(other) = cases
            .iter()
            .find(|row| row.metrics.hd95_convention != hd95_convention)
        {
            return Err(Error::new(format!(
                "case {} has HD95 in the {} convention, case {} in the {} one; a summary needs one",
                cases[0].case, hd95_convention, other.case, other.metrics.hd95_convention
            )));
        }
        let per_case: Vec<[Option<f64>; 15]> = cases
            .iter()
            .map(|row| metric_values(&row.metrics))
            .collect();
        let metrics = METRIC_KEYS
            .iter()
            .enumerate()
            .map(|(column, key)| {
                let values: Vec<Option<f64>> =
                    per_case.iter().map(|values| values[column]).collect();
                MetricStats::of(key, &values)
            })
            .collect();
        Ok(Summary {
            hd95_convention,
            cases,
            metrics,
        })
    }

    /// The statistics of one metric by its key (see [`METRIC_KEYS`]).
    pub fn stats(&self, metric: &str) -> Option<&MetricStats> {
        self.metrics.iter().find(|stats| stats.metric == metric)
    }

    /// Two aligned plain-text tables that fit a 100-column terminal: per class Dice, sensitivity and specificity,
    /// then per region Dice and HD95 (mm). Each has one row per case, then mean, median and std; the class table
    /// ends with the count of undefined values. Notes under them spell out the region names, name the HD95
    /// convention (e.g. "HD95 (BraTS/MONAI, max of directed 95th percentiles), mm") and say what undefined means.
    /// Undefined values show as "-"; Dice, sensitivity and specificity with 4 decimals, HD95 in mm with 2.
    /// Case names longer than 28 characters are shortened in the middle ("...").
    pub fn to_text(&self) -> String {
        let names: Vec<String> = self.cases.iter().map(|row| short_name(&row.case)).collect();
        let name_width = names
            .iter()
            .map(|name| name.chars().count())
            .chain(["undefined".len()])
            .max()
            .expect("at least one width");
        let per_case: Vec<[Option<f64>; 15]> = self
            .cases
            .iter()
            .map(|row| metric_values(&row.metrics))
            .collect();
        let class_groups: Vec<(String, usize)> = Class::ALL
            .iter()
            .map(|class| (class.short_name().to_string(), 3))
            .collect();
        let region_groups: Vec<(String, usize)> = Region::ALL
            .iter()
            .map(|region| (region.abbreviation().to_string(), 2))
            .collect();
        let tables = [
            (
                "Per class: Dice, sensitivity (Sens) and specificity (Spec)",
                class_groups,
                ["Dice", "Sens", "Spec"].repeat(3),
                0..9,
                CLASS_CELL_WIDTH,
                true,
            ),
            (
                "Per region: Dice and HD95 (mm)",
                region_groups,
                ["Dice", "HD95"].repeat(3),
                9..15,
                REGION_CELL_WIDTH,
                false,
            ),
        ];
        let mut lines = Vec::new();
        for (title, groups, headings, columns, cell_width, with_undefined) in tables {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.push(title.to_string());
            let table = TextTable {
                name_width,
                groups: groups.iter().map(|(_, size)| *size).collect(),
                cell_width,
            };
            let group_line: Vec<String> = groups
                .iter()
                .map(|(name, size)| format!("{name:^width$}", width = table.group_width(*size)))
                .collect();
            lines.push(
                format!("{:name_width$}{GAP}{}", "", group_line.join(GAP))
                    .trim_end()
                    .to_string(),
            );
            let headings: Vec<String> = headings.iter().map(|h| h.to_string()).collect();
            let heading_line = table.row("case", &headings);
            let rule = "-".repeat(heading_line.chars().count());
            lines.push(heading_line);
            lines.push(rule.clone());
            for (name, values) in names.iter().zip(&per_case) {
                let cells: Vec<String> = columns
                    .clone()
                    .map(|column| format_value(values[column], METRIC_KEYS[column]))
                    .collect();
                lines.push(table.row(name, &cells));
            }
            lines.push(rule);
            for (label, statistic) in STATISTICS {
                let cells: Vec<String> = self.metrics[columns.clone()]
                    .iter()
                    .map(|stats| format_value(statistic(stats), &stats.metric))
                    .collect();
                lines.push(table.row(label, &cells));
            }
            if with_undefined {
                let counts: Vec<String> = self.metrics[columns.clone()]
                    .iter()
                    .map(|stats| stats.undefined.to_string())
                    .collect();
                lines.push(table.row("undefined", &counts));
            }
        }
        lines.push(String::new());
        let regions: Vec<String> = Region::ALL
            .iter()
            .map(|region| format!("{} = {}", region.abbreviation(), region.name()))
            .collect();
        lines.extend(UNDEFINED_NOTE.iter().map(|line| line.to_string()));
        lines.push(format!("{}.", regions.join(", ")));
        lines.push(format!("{}, mm", self.hd95_convention.description()));
        lines.join("\n") + "\n"
    }

    /// CSV with a header, one row per case, then rows named mean, median, std and undefined (a count).
    /// Undefined values are empty fields; numbers keep full precision. A last column, `hd95_convention`, holds the
    /// convention's name (`directed_max` or `pooled`) on every row.
    pub fn to_csv(&self) -> String {
        let convention = self.hd95_convention.name();
        let mut out = format!("case,{},hd95_convention\n", METRIC_KEYS.join(","));
        let number = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
        for row in &self.cases {
            let cells: Vec<String> = metric_values(&row.metrics)
                .iter()
                .map(|&v| number(v))
                .collect();
            out += &format!(
                "{},{},{convention}\n",
                csv_field(&row.case),
                cells.join(",")
            );
        }
        for (label, statistic) in STATISTICS {
            let cells: Vec<String> = self
                .metrics
                .iter()
                .map(|stats| number(statistic(stats)))
                .collect();
            out += &format!("{label},{},{convention}\n", cells.join(","));
        }
        let counts: Vec<String> = self
            .metrics
            .iter()
            .map(|stats| stats.undefined.to_string())
            .collect();
        out + &format!("undefined,{},{convention}\n", counts.join(","))
    }

    /// Pretty-printed JSON of the whole summary (undefined values are `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary holds only numbers and strings")
    }
}

impl MetricStats {
    fn of(metric: &str, values: &[Option<f64>]) -> Self {
        let mut defined: Vec<f64> = values.iter().flatten().copied().collect();
        defined.sort_by(f64::total_cmp);
        let count = defined.len();
        let mean = (count > 0).then(|| defined.iter().sum::<f64>() / count as f64);
        let median = (count > 0).then(|| (defined[(count - 1) / 2] + defined[count / 2]) / 2.0);
        let std = mean.map(|mean| {
            (defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count as f64).sqrt()
        });
        MetricStats {
            metric: metric.to_string(),
            mean,
            median,
            std,
            defined: count,
            undefined: values.len() - count,
        }
    }
}

/// The seed's `get_sens_spec_df` layout: rows Sensitivity and Specificity, one column per class, values rounded
/// to 4 decimals, "undefined" where a value is. Column names as the seed's, spelt "tumour" as everywhere else.
pub fn sens_spec_table(classes: &[SensSpec]) -> String {
    const SEED_NAMES: [&str; 3] = ["Edema", "Non-Enhancing Tumour", "Enhancing Tumour"];
    let cell = |value: Option<f64>| value.map_or("undefined".to_string(), |v| format!("{v:.4}"));
    let columns: Vec<[String; 3]> = classes
        .iter()
        .enumerate()
        .map(|(i, class)| {
            let name = SEED_NAMES
                .get(i)
                .map_or(format!("Class {i}"), |name| name.to_string());
            [name, cell(class.sensitivity), cell(class.specificity)]
        })
        .collect();
    ["", "Sensitivity", "Specificity"]
        .iter()
        .enumerate()
        .map(|(line, label)| {
            let cells: String = columns
                .iter()
                .map(|column| {
                    let width = column.iter().map(String::len).max().unwrap_or(0);
                    format!("  {:>width$}", column[line])
                })
                .collect();
            format!("{label:<11}{cells}\n")
        })
        .collect()
}

/// A statistic of [`MetricStats`], read by the table and CSV writers.
type Statistic = fn(&MetricStats) -> Option<f64>;

/// The aggregate rows of the text table and the CSV, in order.
const STATISTICS: [(&str, Statistic); 3] = [
    ("mean", |stats| stats.mean),
    ("median", |stats| stats.median),
    ("std", |stats| stats.std),
];

const GAP: &str = " | ";
/// Width of a Dice, sensitivity or specificity cell ("0.1234").
const CLASS_CELL_WIDTH: usize = 6;
/// Width of a cell of the region table, where HD95 may reach "1234.56".
const REGION_CELL_WIDTH: usize = 7;
/// Case names in the text table longer than this are shortened in the middle, so the table fits 100 columns.
const TEXT_NAME_WIDTH: usize = 28;

/// What "-" and the undefined row mean, under the text table (each line within 100 columns).
const UNDEFINED_NOTE: [&str; 3] = [
    "- and undefined: the metric has no value for that case (Dice: the class is absent from both maps;",
    "sensitivity: absent from the ground truth; specificity: the ground truth is that class everywhere).",
    "Undefined values are left out of mean, median and std; the undefined row counts them.",
];

/// The layout of one text table: the case-name column, then groups of cells.
struct TextTable {
    name_width: usize,
    /// Cells per group.
    groups: Vec<usize>,
    cell_width: usize,
}

impl TextTable {
    fn group_width(&self, cells: usize) -> usize {
        cells * self.cell_width + (cells - 1)
    }

    /// The name, then the cells grouped as in the heading.
    fn row(&self, name: &str, cells: &[String]) -> String {
        let mut groups = Vec::new();
        let mut rest = cells;
        for &size in &self.groups {
            let (group, tail) = rest.split_at(size);
            groups.push(
                group
                    .iter()
                    .map(|c| format!("{c:>width$}", width = self.cell_width))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            rest = tail;
        }
        format!(
            "{name:width$}{GAP}{}",
            groups.join(GAP),
            width = self.name_width
        )
    }
}

/// A case name of at most [`TEXT_NAME_WIDTH`] characters: longer ones keep their start and end around "...".
fn short_name(name: &str) -> String {
    let characters: Vec<char> = name.chars().collect();
    if characters.len() <= TEXT_NAME_WIDTH {
        return name.to_string();
    }
    let head = (TEXT_NAME_WIDTH - 3) / 3;
    let tail = TEXT_NAME_WIDTH - 3 - head;
    let start: String = characters[..head].iter().collect();
    let end: String = characters[characters.len() - tail..].iter().collect();
    format!("{start}...{end}")
}

fn format_value(value: Option<f64>, metric: &str) -> String {
    match value {
        None => "-".to_string(),
        Some(v) if metric.ends_with("hd95") => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The 15 metrics of a case, in [`METRIC_KEYS`] order.
fn metric_values(metrics: &CaseMetrics) -> [Option<f64>; 15] {
    let classes = metrics
        .classes()
        .into_iter()
        .flat_map(|c| [c.dice, c.sensitivity, c.specificity]);
    let regions = metrics
        .regions()
        .into_iter()
        .flat_map(|r| [Some(r.dice), Some(r.hd95)]);
    let values: Vec<Option<f64>> = classes.chain(regions).collect();
    values
        .try_into()
        .expect("3 classes x 3 metrics + 3 regions x 2 metrics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassMetrics, HausdorffConvention, RegionMetrics};

    fn class(
        dice: Option<f64>,
        sensitivity: Option<f64>,
        specificity: Option<f64>,
    ) -> ClassMetrics {
        ClassMetrics {
            dice,
            sensitivity,
            specificity,
        }
    }

    fn region(dice: f64, hd95: f64) -> RegionMetrics {
        RegionMetrics { dice, hd95 }
    }

    /// Three cases; edema Dice 0.5, 0.7, 0.9; edema sensitivity undefined in the second; enhancing Dice undefined
    /// everywhere; WT HD95 2, 4, 373.12866.
    fn summary() -> Summary {
        let case =
            |name: &str, edema_dice: f64, edema_sensitivity: Option<f64>, wt_hd95: f64| CaseRow {
                case: name.to_string(),
                metrics: CaseMetrics {
                    edema: class(Some(edema_dice), edema_sensitivity, Some(1.0)),
                    non_enhancing: class(Some(0.25), Some(0.5), Some(0.75)),
                    enhancing: class(None, None, Some(1.0)),
                    whole_tumour: region(0.8, wt_hd95),
                    tumour_core: region(1.0, 0.0),
                    enhancing_tumour: region(0.0, 373.12866),
                    hd95_convention: HausdorffConvention::DirectedMax,
                },
            };
        Summary::new(vec![
            case("BRATS_001", 0.5, Some(0.6), 2.0),
            case("BRATS_002", 0.7, None, 4.0),
            case("BRATS,003", 0.9, Some(0.8), 373.12866),
        ])
    }

    #[test]
    fn statistics_skip_and_count_undefined_values() {
        let summary = summary();
        let edema_dice = summary.stats("edema_dice").unwrap();
        assert!((edema_dice.mean.unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(edema_dice.median, Some(0.7));
        // Population std of 0.5, 0.7, 0.9: sqrt((0.04 + 0 + 0.04) / 3).
        assert!((edema_dice.std.unwrap() - (0.08f64 / 3.0).sqrt()).abs() < 1e-12);
        let sensitivity = summary.stats("edema_sensitivity").unwrap();
        assert!((sensitivity.mean.unwrap() - 0.7).abs() < 1e-12);
        assert!(
            (sensitivity.median.unwrap() - 0.7).abs() < 1e-12,
            "even count: mean of the middle two"
        );
        assert_eq!((sensitivity.defined, sensitivity.undefined), (2, 1));
        let enhancing = summary.stats("enhancing_dice").unwrap();
        assert_eq!(
            (
                enhancing.mean,
                enhancing.median,
                enhancing.std,
                enhancing.undefined
            ),
            (None, None, None, 3)
        );
        assert_eq!(summary.stats("wt_hd95").unwrap().median, Some(4.0));
        assert_eq!(summary.metrics.len(), METRIC_KEYS.len());
    }

    /// The cells of a table row: the words between the "|" separators, the name first.
    fn cells(line: &str) -> Vec<&str> {
        line.split_whitespace().filter(|c| *c != "|").collect()
    }

    #[test]
    fn text_table_is_two_aligned_tables_that_fit_100_columns() {
        let text = summary().to_text();
        let lines: Vec<&str> = text.lines().collect();
        let widest = lines.iter().map(|line| line.chars().count()).max().unwrap();
        assert!(widest <= 100, "{widest} columns:\n{text}");
        // Class table: title, groups, headings, rule, 3 cases, rule, mean/median/std, undefined; a blank line;
        // region table: title, groups, headings, rule, 3 cases, rule, mean/median/std; a blank line; 5 notes.
        assert_eq!(lines.len(), 12 + 1 + 11 + 1 + 5, "{text}");
        assert_eq!(
            lines[0],
            "Per class: Dice, sensitivity (Sens) and specificity (Spec)"
        );
        assert_eq!(lines[13], "Per region: Dice and HD95 (mm)");
        let class_table = &lines[1..12];
        let region_table = &lines[14..24];
        for table in [class_table, region_table] {
            assert!(
                table[1..].iter().all(|line| line.len() == table[1].len()),
                "{text}"
            );
        }
        assert_eq!(
            cells(class_table[0]),
            ["edema", "non-enhancing", "enhancing"]
        );
        assert_eq!(cells(region_table[0]), ["WT", "TC", "ET"]);
        assert_eq!(cells(class_table[1])[..4], ["case", "Dice", "Sens", "Spec"]);
        assert_eq!(
            cells(region_table[1]),
            ["case", "Dice", "HD95", "Dice", "HD95", "Dice", "HD95"]
        );
        // BRATS_002: edema Dice 0.7, sensitivity undefined, specificity 1; WT Dice 0.8, HD95 4 mm.
        let second = |table: &[&str]| {
            cells(
                table
                    .iter()
                    .find(|line| line.starts_with("BRATS_002"))
                    .unwrap(),
            )
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
        };
        assert_eq!(second(class_table)[1..4], ["0.7000", "-", "1.0000"]);
        assert_eq!(
            second(region_table)[1..],
            ["0.8000", "4.00", "1.0000", "0.00", "0.0000", "373.13"]
        );
        // Edema Dice mean 0.7, WT HD95 median 4.
        assert_eq!(cells(class_table[7])[..2], ["mean", "0.7000"]);
        assert_eq!(cells(region_table[8])[..3], ["median", "0.8000", "4.00"]);
        assert_eq!(
            cells(class_table[10]),
            ["undefined", "0", "1", "0", "0", "0", "0", "3", "3", "0"]
        );
        assert_eq!(
            lines[lines.len() - 2],
            "WT = whole tumour, TC = tumour core, ET = enhancing tumour."
        );
        assert_eq!(
            *lines.last().unwrap(),
            "HD95 (BraTS/MONAI, max of directed 95th percentiles), mm"
        );
        assert!(text.contains("- and undefined: the metric has no value for that case"));
    }

    #[test]
    fn long_case_names_are_shortened_in_the_middle_to_fit() {
        let mut cases = summary().cases;
        cases[0].case = "BraTS-GLI-00000-000".into();
        cases[1].case = "a-very-long-case-identifier-from-somewhere-else-0042".into();
        let text = Summary::new(cases).to_text();
        let widest = text.lines().map(|line| line.chars().count()).max().unwrap();
        assert!(widest <= 100, "{widest} columns:\n{text}");
        assert!(text.contains("\nBraTS-GLI-00000-000 "), "{text}");
        // 28 characters: the first 8, "...", the last 17.
        assert!(
            text.contains("\na-very-l...mewhere-else-0042 | 0.7000"),
            "{text}"
        );
        assert_eq!(
            short_name("a-very-long-case-identifier-from-somewhere-else-0042")
                .chars()
                .count(),
            28
        );
        assert_eq!(short_name("short"), "short");
    }

    #[test]
    fn csv_has_a_row_per_case_and_aggregate_rows() {
        let csv = summary().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 3 + 4);
        assert_eq!(
            lines[0],
            format!("case,{},hd95_convention", METRIC_KEYS.join(","))
        );
        assert_eq!(
            lines[2],
            "BRATS_002,0.7,,1,0.25,0.5,0.75,,,1,0.8,4,1,0,0,373.12866,directed_max"
        );
        assert!(
            lines[3].starts_with("\"BRATS,003\",0.9,0.8,"),
            "{}",
            lines[3]
        );
        assert!(lines[5].starts_with("median,0.7,0.7,1,"), "{}", lines[5]);
        assert_eq!(
            lines[7],
            "undefined,0,1,0,0,0,0,3,3,0,0,0,0,0,0,0,directed_max"
        );
        assert!(
            lines.iter().all(|line| line.split(',').count() == 17
                || line.starts_with('"') && line.split(',').count() == 18),
            "a convention on every row:\n{csv}"
        );
    }

    #[test]
    fn json_round_trips() {
        let summary = summary();
        let json = summary.to_json();
        assert!(json.contains("\"metric\": \"wt_hd95\""));
        assert!(
            json.starts_with("{\n  \"hd95_convention\": \"directed_max\","),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Summary>(&json).unwrap(), summary);
    }

    /// The fixture's cases with HD95 relabelled as pooled.
    fn pooled(mut rows: Vec<CaseRow>) -> Vec<CaseRow> {
        for row in &mut rows {
            row.metrics.hd95_convention = HausdorffConvention::Pooled;
        }
        rows
    }

    #[test]
    fn the_convention_comes_from_the_cases_and_shows_everywhere() {
        assert_eq!(
            Summary::new(vec![]).hd95_convention,
            HausdorffConvention::DirectedMax
        );
        let summary = Summary::new(pooled(summary().cases));
        assert_eq!(summary.hd95_convention, HausdorffConvention::Pooled);
        assert!(summary.to_text().ends_with("\nHD95 (MedPy, pooled), mm\n"));
        assert!(summary
            .to_csv()
            .lines()
            .all(|line| line.ends_with(",pooled") || line.ends_with(",hd95_convention")));
        assert!(summary
            .to_json()
            .contains("\"hd95_convention\": \"pooled\""));
    }

    #[test]
    fn cases_of_mixed_conventions_do_not_make_a_summary() {
        let mut cases = summary().cases;
        cases[2].metrics.hd95_convention = HausdorffConvention::Pooled;
        let error = Summary::try_new(cases.clone()).unwrap_err();
        assert_eq!(
            error.problem,
            "case BRATS_001 has HD95 in the directed_max convention, case BRATS,003 in the pooled one; \
             a summary needs one"
        );
        let panic = std::panic::catch_unwind(|| Summary::new(cases)).unwrap_err();
        assert_eq!(panic.downcast_ref::<String>(), Some(&error.problem));
    }

    #[test]
    fn a_summary_saved_before_the_convention_was_recorded_reads_as_pooled() {
        let summary = Summary::new(pooled(summary().cases));
        let json = serde_json::to_string(&summary).unwrap();
        let old = json
            .replace(r#""hd95_convention":"pooled","#, "")
            .replace(r#","hd95_convention":"pooled""#, "");
        assert!(!old.contains("hd95_convention"), "{old}");
        assert_eq!(serde_json::from_str::<Summary>(&old).unwrap(), summary);
    }

    #[test]
    fn seed_table_has_sensitivity_and_specificity_rows() {
        let table = sens_spec_table(&[
            SensSpec {
                sensitivity: Some(0.90854),
                specificity: Some(0.9848),
            },
            SensSpec {
                sensitivity: None,
                specificity: Some(0.9961),
            },
            SensSpec {
                sensitivity: Some(0.7891),
                specificity: Some(0.996),
            },
        ]);
        let expected = concat!(
            "              Edema  Non-Enhancing Tumour  Enhancing Tumour\n",
            "Sensitivity  0.9085             undefined            0.7891\n",
            "Specificity  0.9848                0.9961            0.9960\n",
        );
        assert_eq!(table, expected);
    }
}

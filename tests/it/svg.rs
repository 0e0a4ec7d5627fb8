//! Reading back the SVG plots normscope writes (plotters' SVG backend), as
//! the plot tests need them: panels by caption, their tick labels, and the
//! line sample beside each legend entry.

/// A `<text>` or a `<polyline>` of the document.
#[derive(Debug, Clone)]
pub enum Element {
    Text {
        x: f64,
        y: f64,
        anchor: String,
        size: String,
        content: String,
    },
    Line {
        stroke: String,
        points: Vec<(f64, f64)>,
    },
}

/// The elements of an SVG document (or of one panel of it), in order.
#[derive(Debug, Clone)]
pub struct Svg(pub Vec<Element>);

/// The value of `name="..."` in a tag's attributes.
fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    tag.find(&key)
        .map(|i| {
            let rest = &tag[i + key.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .unwrap_or_default()
}

impl Svg {
    /// Parses `svg` (the text and polylines; everything else is skipped).
    pub fn parse(svg: &str) -> Self {
        let mut out = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            rest = &rest[i..];
            let end = rest.find('>').unwrap();
            let tag = &rest[..end];
            if tag.starts_with("<text ") {
                let body = &rest[end + 1..];
                let content = body[..body.find("</text>").unwrap()].trim();
                out.push(Element::Text {
                    x: attr(tag, "x").parse().unwrap(),
                    y: attr(tag, "y").parse().unwrap(),
                    anchor: attr(tag, "text-anchor"),
                    size: attr(tag, "font-size"),
                    content: unescape(content),
                });
            } else if tag.starts_with("<polyline ") {
                let points = attr(tag, "points")
                    .split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                out.push(Element::Line {
                    stroke: attr(tag, "stroke"),
                    points,
                });
            }
            rest = &rest[end..];
        }
        Svg(out)
    }

    /// Every text, in order.
    pub fn texts(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Element::Text { content, .. } => Some(content.clone()),
                Element::Line { .. } => None,
            })
            .collect()
    }

    /// The panel captioned `caption`: its elements, up to the next caption.
    pub fn panel(&self, caption: &str) -> Svg {
        let start = self
            .0
            .iter()
            .position(|e| matches!(e, Element::Text { content, .. } if content == caption))
            .unwrap_or_else(|| panic!("no panel {caption:?} in {:?}", self.texts()));
        let Element::Text { size, .. } = &self.0[start] else {
            unreachable!()
        };
        let end = self.0[start + 1..]
            .iter()
            .position(|e| matches!(e, Element::Text { size: s, .. } if s == size))
            .map_or(self.0.len(), |i| start + 1 + i);
        Svg(self.0[start..end].to_vec())
    }

    /// Numeric labels with `anchor` (`middle`: x ticks, `end`: y ticks), in order.
    fn numbers(&self, want: &str) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Element::Text {
                    anchor, content, ..
                } if anchor == want && content.parse::<f64>().is_ok() => Some(content.clone()),
                _ => None,
            })
            .collect()
    }

    /// A panel's x tick labels, left to right.
    pub fn x_ticks(&self) -> Vec<String> {
        self.numbers("middle")
    }

    /// A panel's y tick labels, as drawn.
    pub fn y_ticks(&self) -> Vec<String> {
        self.numbers("end")
    }

    /// The line sample beside the legend entry `label` of a panel: its colour
    /// and how many segments it is drawn in (1: solid; more: dashed).
    pub fn legend_sample(&self, label: &str) -> (String, usize) {
        let (tx, ty) = self
            .0
            .iter()
            .find_map(|e| match e {
                Element::Text {
                    x,
                    y,
                    anchor,
                    content,
                    ..
                } if content == label && anchor == "start" => Some((*x, *y)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no legend entry {label:?} in {:?}", self.texts()));
        // Samples are drawn after the legend's texts, over everything else.
        let after = self
            .0
            .iter()
            .rposition(|e| matches!(e, Element::Text { anchor, .. } if anchor == "start"))
            .unwrap();
        let segments: Vec<&String> = self.0[after..]
            .iter()
            .filter_map(|e| match e {
                Element::Line { stroke, points, .. }
                    if points.len() == 2
                        && points[0].1 == points[1].1
                        && (ty..ty + 12.0).contains(&points[0].1)
                        && points[0].0 >= tx - 32.0
                        && points[1].0 < tx =>
                {
                    Some(stroke)
                }
                _ => None,
            })
            .collect();
        assert!(!segments.is_empty(), "no sample beside {label:?}");
        assert!(
            segments.iter().all(|s| *s == segments[0]),
            "{label:?}: a sample of several colours"
        );
        (segments[0].clone(), segments.len())
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

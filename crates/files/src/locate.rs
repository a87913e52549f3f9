//! Where things are in the pipeline file.
//!
//! serde tells us the position of *syntax* and *type* errors, but once the
//! file is deserialized the positions are gone. Semantic checks (an unknown
//! `needs`, a cycle, a bad duration) still have to point at the offending
//! text, so we parse the same source a second time with `yaml-rust2`, whose
//! parser events carry markers, and keep a map from YAML paths such as
//! `stages.test.needs[1]` to line and column.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A position in the pipeline file; both numbers start at 1, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    /// Line number, 1-based.
    pub line: usize,
    /// Column in characters, 1-based.
    pub column: usize,
}

impl Location {
    /// The start of the file: where an error points when nothing better is known.
    pub const START: Location = Location { line: 1, column: 1 };
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One step of a [`YamlPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A path to a node of the YAML document, rendered as `stages.test.needs[1]`.
///
/// Kept as segments rather than a string so that keys containing `.` or `[`
/// (legal inside `with:`) never make a path ambiguous when we walk up to a
/// parent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The enclosing node, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                // Quote keys that would otherwise read as several segments.
                Segment::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// A key that appears twice in one mapping. YAML forbids it, but serde would
/// silently keep the last one, which hides mistakes such as two stages named
/// alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The mapping holding the key.
    pub mapping: YamlPath,
    /// The repeated key.
    pub key: String,
    /// Where the second occurrence is.
    pub location: Location,
    /// Where the first occurrence is.
    pub first: Location,
}

/// Positions of every key and value of the pipeline file.
#[derive(Debug, Default)]
pub struct SourceMap {
    keys: HashMap<YamlPath, Location>,
    values: HashMap<YamlPath, Location>,
    duplicate: Option<DuplicateKey>,
}

impl SourceMap {
    /// Builds the map from the pipeline source.
    ///
    /// A document that `yaml-rust2` cannot parse yields the positions seen
    /// before the error: serde reports syntax errors itself, so this map is
    /// only ever a best effort for pointing at semantic errors.
    pub fn build(src: &str) -> Self {
        let mut builder = Builder {
            lines: src.lines().collect(),
            ..Builder::default()
        };
        let mut parser = Parser::new_from_str(src);
        // Ignoring the error is deliberate: see the doc comment above.
        let _ = parser.load(&mut builder, false);
        builder.map
    }

    /// Where the value at `path` starts, or the nearest enclosing node that
    /// has a position (aliases and merged keys have none of their own).
    pub fn value(&self, path: &YamlPath) -> Location {
        let mut path = path.clone();
        loop {
            if let Some(location) = self.values.get(&path).or_else(|| self.keys.get(&path)) {
                return *location;
            }
            match path.parent() {
                Some(parent) => path = parent,
                None => return Location::START,
            }
        }
    }

    /// Where the key that names `path` is (e.g. the `deploy:` of a stage);
    /// falls back to [`SourceMap::value`].
    pub fn key(&self, path: &YamlPath) -> Location {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }

    /// The first key repeated within a mapping, if any.
    pub fn duplicate(&self) -> Option<&DuplicateKey> {
        self.duplicate.as_ref()
    }
}

/// An open mapping or sequence while walking the event stream.
#[derive(Debug)]
enum Frame {
    Mapping {
        path: YamlPath,
        /// The key whose value comes next; `None` while a key is expected.
        pending_key: Option<String>,
        /// Set while a complex (non-scalar) key is being read.
        in_complex_key: bool,
        seen: HashMap<String, Location>,
        /// For block mappings the parser marks the mapping *after* its first
        /// key, so the first key's position stands for the whole value.
        fix_value_position: bool,
    },
    Sequence {
        path: YamlPath,
        next_index: usize,
    },
}

#[derive(Debug, Default)]
struct Builder<'a> {
    lines: Vec<&'a str>,
    stack: Vec<Frame>,
    map: SourceMap,
}

impl Builder<'_> {
    /// Decides the path of the node that starts now and records its position.
    /// Returns `None` when the node is a mapping key: keys are recorded under
    /// the path they name, and a complex (non-scalar) key gets no path.
    fn node(&mut self, event_is_scalar: Option<&str>, location: Location) -> Option<YamlPath> {
        let Some(frame) = self.stack.last_mut() else {
            self.map.values.insert(YamlPath::root(), location);
            return Some(YamlPath::root());
        };
        match frame {
            Frame::Sequence { path, next_index } => {
                let path = path.index(*next_index);
                *next_index += 1;
                self.map.values.insert(path.clone(), location);
                Some(path)
            }
            Frame::Mapping {
                path,
                pending_key,
                in_complex_key,
                seen,
                fix_value_position,
            } => {
                if *fix_value_position {
                    *fix_value_position = false;
                    self.map.values.insert(path.clone(), location);
                }
                match pending_key.take() {
                    Some(key) => {
                        let path = path.key(&key);
                        self.map.values.insert(path.clone(), location);
                        Some(path)
                    }
                    None => {
                        let Some(key) = event_is_scalar else {
                            *in_complex_key = true;
                            return None;
                        };
                        let child = path.key(key);
                        if let Some(first) = seen.get(key) {
                            if self.map.duplicate.is_none() {
                                self.map.duplicate = Some(DuplicateKey {
                                    mapping: path.clone(),
                                    key: key.to_owned(),
                                    location,
                                    first: *first,
                                });
                            }
                        } else {
                            seen.insert(key.to_owned(), location);
                            self.map.keys.insert(child, location);
                        }
                        *pending_key = Some(key.to_owned());
                        None
                    }
                }
            }
        }
    }

    /// Called when a whole node (scalar, alias or closed collection) is done.
    fn node_done(&mut self) {
        if let Some(Frame::Mapping {
            in_complex_key,
            pending_key,
            ..
        }) = self.stack.last_mut()
        {
            if *in_complex_key {
                // The complex key is complete; its value has no usable path.
                *in_complex_key = false;
                *pending_key = Some(String::from("?"));
            }
        }
    }

    fn is_flow_start(&self, location: Location) -> bool {
        self.lines
            .get(location.line.saturating_sub(1))
            .and_then(|line| line.chars().nth(location.column.saturating_sub(1)))
            .is_some_and(|c| c == '{')
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        // yaml-rust2 lines are 1-based but columns 0-based.
        let location = Location {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match event {
            Event::Scalar(value, ..) => {
                let _ = self.node(Some(&value), location);
                if !self.awaiting_value() {
                    self.node_done();
                }
            }
            Event::Alias(_) => {
                let _ = self.node(None, location);
                self.node_done();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // Children of complex keys get a path nobody looks up, so
                // they cannot shadow real entries.
                let path = self
                    .node(None, location)
                    .unwrap_or_else(|| YamlPath::root().key("?complex"));
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        fix_value_position: !self.is_flow_start(location),
                        path,
                        pending_key: None,
                        in_complex_key: false,
                        seen: HashMap::new(),
                    }
                } else {
                    Frame::Sequence {
                        path,
                        next_index: 0,
                    }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let _ = self.stack.pop();
                self.node_done();
            }
            _ => {}
        }
    }
}

impl Builder<'_> {
    /// True right after a mapping key: the node is not complete until its
    /// value has been read.
    fn awaiting_value(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: Some(_),
                ..
            })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "\
version: 1
stages:
  lint:
    uses: plugins/lint.wasm
  test:
    needs: [lint, \"build\"]
    with:
      a.b: { c: [1, 2] }
    grants:
      memory: 512MiB
";

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn paths_render_like_selectors() {
        let path = YamlPath::root()
            .key("stages")
            .key("test")
            .key("needs")
            .index(1);
        assert_eq!(path.to_string(), "stages.test.needs[1]");
        let odd = YamlPath::root().key("with").key("a.b").index(0);
        assert_eq!(odd.to_string(), "with[\"a.b\"][0]");
    }

    #[test]
    fn finds_values_and_keys() {
        let map = SourceMap::build(SRC);
        let stages = YamlPath::root().key("stages");
        assert_eq!(map.value(&YamlPath::root().key("version")), at(1, 10));
        assert_eq!(map.key(&stages.key("lint")), at(3, 3));
        // A block mapping value starts at its first key.
        assert_eq!(map.value(&stages.key("lint")), at(4, 5));
        let needs = stages.key("test").key("needs");
        assert_eq!(map.value(&needs), at(6, 12));
        assert_eq!(map.value(&needs.index(0)), at(6, 13));
        assert_eq!(map.value(&needs.index(1)), at(6, 19));
        let with = stages.key("test").key("with");
        assert_eq!(map.value(&with.key("a.b").key("c").index(1)), at(8, 21));
        let memory = stages.key("test").key("grants").key("memory");
        assert_eq!(map.value(&memory), at(10, 15));
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_parent() {
        let map = SourceMap::build(SRC);
        let missing = YamlPath::root()
            .key("stages")
            .key("lint")
            .key("needs")
            .index(3);
        assert_eq!(map.value(&missing), at(4, 5));
        assert_eq!(map.value(&YamlPath::root().key("nope")), at(1, 1));
    }

    #[test]
    fn reports_duplicate_keys() {
        let map = SourceMap::build("stages:\n  a: {uses: x}\n  a: {uses: y}\n");
        let duplicate = map.duplicate().cloned();
        assert_eq!(
            duplicate,
            Some(DuplicateKey {
                mapping: YamlPath::root().key("stages"),
                key: "a".into(),
                location: at(3, 3),
                first: at(2, 3),
            })
        );
    }

    #[test]
    fn survives_complex_keys_aliases_and_broken_input() {
        let map = SourceMap::build("? [a, b]\n: 1\nx: &x {y: 2}\nz: *x\n");
        assert_eq!(map.value(&YamlPath::root().key("z")), at(4, 4));
        assert_eq!(map.value(&YamlPath::root().key("x").key("y")), at(3, 11));
        let broken = SourceMap::build("a: 1\nb: [x\n");
        assert_eq!(broken.value(&YamlPath::root().key("a")), at(1, 4));
    }
}

//! The names of the per-block residual figures, written once: [`Figure`]
//! names one figure (a misspelt name fails to compile instead of panicking
//! at run time) and [`PerFigure`] holds one value for each of them.

use std::ops::{Index, IndexMut};

use serde::ser::{Serialize, SerializeMap, Serializer};

/// One per-block figure (see [`super::residual`] for the definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    /// ||h_in||, the residual entering the block.
    NormHIn,
    /// ||a||, the attention update.
    NormAttn,
    /// ||h_mid|| = ||h_in + a||.
    NormHMid,
    /// ||m||, the MLP update.
    NormMlp,
    /// ||h_out|| = ||h_mid + m||.
    NormHOut,
    /// ||h_out - h_in||.
    NormDelta,
    /// ||h_out - h_in|| / ||h_in||.
    RelContrib,
    /// ||a|| / ||h_in||.
    AttnRatio,
    /// ||m|| / ||h_mid||.
    MlpRatio,
    /// cos(h_in, h_out).
    Cos,
    /// cos(h_in, h_mid).
    AttnCos,
    /// cos(h_mid, h_out).
    MlpCos,
    /// Block influence 1 - cos.
    Bi,
    /// 1 - attn_cos.
    AttnBi,
    /// 1 - mlp_cos.
    MlpBi,
    /// arccos(cos) / pi.
    Angular,
    /// arccos(attn_cos) / pi.
    AttnAngular,
    /// arccos(mlp_cos) / pi.
    MlpAngular,
    /// ||attention's output before its post-norm|| (Peri-LN; = norm_attn otherwise).
    NormAttnRaw,
    /// ||the MLP's output before its post-norm|| (Peri-LN; = norm_mlp otherwise).
    NormMlpRaw,
}

impl Figure {
    /// Every figure, in table order (the order of the CSV columns).
    pub const ALL: [Figure; 20] = [
        Figure::NormHIn,
        Figure::NormAttn,
        Figure::NormHMid,
        Figure::NormMlp,
        Figure::NormHOut,
        Figure::NormDelta,
        Figure::RelContrib,
        Figure::AttnRatio,
        Figure::MlpRatio,
        Figure::Cos,
        Figure::AttnCos,
        Figure::MlpCos,
        Figure::Bi,
        Figure::AttnBi,
        Figure::MlpBi,
        Figure::Angular,
        Figure::AttnAngular,
        Figure::MlpAngular,
        Figure::NormAttnRaw,
        Figure::NormMlpRaw,
    ];

    /// How many figures there are.
    pub const COUNT: usize = Self::ALL.len();

    /// The name JSON keys, CSV columns and the report use.
    pub fn name(self) -> &'static str {
        match self {
            Figure::NormHIn => "norm_h_in",
            Figure::NormAttn => "norm_attn",
            Figure::NormHMid => "norm_h_mid",
            Figure::NormMlp => "norm_mlp",
            Figure::NormHOut => "norm_h_out",
            Figure::NormDelta => "norm_delta",
            Figure::RelContrib => "rel_contrib",
            Figure::AttnRatio => "attn_ratio",
            Figure::MlpRatio => "mlp_ratio",
            Figure::Cos => "cos",
            Figure::AttnCos => "attn_cos",
            Figure::MlpCos => "mlp_cos",
            Figure::Bi => "bi",
            Figure::AttnBi => "attn_bi",
            Figure::MlpBi => "mlp_bi",
            Figure::Angular => "angular",
            Figure::AttnAngular => "attn_angular",
            Figure::MlpAngular => "mlp_angular",
            Figure::NormAttnRaw => "norm_attn_raw",
            Figure::NormMlpRaw => "norm_mlp_raw",
        }
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Figure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One value per [`Figure`], indexed by it. Serializes as a map from each
/// figure's name, keys in name order (as a map keyed by the names would).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerFigure<T>([T; Figure::COUNT]);

impl<T> PerFigure<T> {
    /// The value of every figure from `f`.
    pub fn from_fn(mut f: impl FnMut(Figure) -> T) -> Self {
        Self(Figure::ALL.map(&mut f))
    }

    /// `(figure, value)` in table order.
    pub fn iter(&self) -> impl Iterator<Item = (Figure, &T)> {
        Figure::ALL.into_iter().zip(self.0.iter())
    }

    /// Mutable `(figure, value)` in table order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Figure, &mut T)> {
        Figure::ALL.into_iter().zip(self.0.iter_mut())
    }

    /// Every value mapped through `f`.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerFigure<U> {
        PerFigure::from_fn(|k| f(&self[k]))
    }
}

impl<T> Index<Figure> for PerFigure<T> {
    type Output = T;

    fn index(&self, f: Figure) -> &T {
        &self.0[f as usize]
    }
}

impl<T> IndexMut<Figure> for PerFigure<T> {
    fn index_mut(&mut self, f: Figure) -> &mut T {
        &mut self.0[f as usize]
    }
}

impl<T: Serialize> Serialize for PerFigure<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut keys = Figure::ALL;
        keys.sort_by_key(|f| f.name());
        let mut map = s.serialize_map(Some(keys.len()))?;
        for f in keys {
            map.serialize_entry(f.name(), &self[f])?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_snake_case_and_indices_follow_table_order() {
        let mut names: Vec<&str> = Figure::ALL.iter().map(|f| f.name()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        for (i, f) in Figure::ALL.into_iter().enumerate() {
            assert_eq!(f as usize, i, "{f}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Figure::COUNT);
    }

    #[test]
    fn serializes_as_a_name_keyed_map_in_name_order() {
        let v = PerFigure::from_fn(|f| f as usize);
        let json = serde_json::to_string(&v).unwrap();
        let by_name: std::collections::BTreeMap<&str, usize> = Figure::ALL
            .iter()
            .map(|&f| (f.name(), f as usize))
            .collect();
        assert_eq!(json, serde_json::to_string(&by_name).unwrap());
        assert_eq!(v[Figure::RelContrib], 6);
    }
}

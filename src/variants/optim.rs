//! AdamW with decoupled weight decay: candle_nn's `AdamW` update, step for
//! step, with its moments exposed so a checkpoint can carry them (an exact
//! `--resume`) and each step reporting how far it moved every parameter.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::ParamsAdamW;

use crate::error::{Error, Result};

struct Slot {
    name: String,
    var: Var,
    m: Var,
    v: Var,
}

/// One parameter's squared norms around an update.
#[derive(Debug, Clone, Copy)]
pub struct UpdateNorms {
    /// `||theta_before||^2`.
    pub weight_sq: f64,
    /// `||theta_after - theta_before||^2`.
    pub update_sq: f64,
}

/// The optimizer over named parameters.
pub struct AdamW {
    slots: Vec<Slot>,
    step_t: usize,
    params: ParamsAdamW,
}

fn sq_norm(t: &Tensor) -> Result<f64> {
    Ok(t.sqr()?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?)
}

impl AdamW {
    /// Zero moments for every parameter.
    pub fn new(vars: &[(String, Var)], params: ParamsAdamW) -> Result<Self> {
        let slots = vars
            .iter()
            .map(|(name, var)| {
                let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    m: zeros()?,
                    v: zeros()?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            step_t: 0,
            params,
        })
    }

    /// Sets the learning rate of the next step.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// Applies one update; returns each parameter's norms, by name, in order.
    pub fn step(&mut self, grads: &GradStore) -> Result<Vec<(String, UpdateNorms)>> {
        self.step_t += 1;
        let ParamsAdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let scale_m = 1.0 / (1.0 - beta1.powi(self.step_t as i32));
        let scale_v = 1.0 / (1.0 - beta2.powi(self.step_t as i32));
        let mut out = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let Some(g) = grads.get(&s.var) else { continue };
            let theta = s.var.as_tensor();
            let next_m = ((s.m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let next_v = ((s.v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let adjusted = ((&next_m * scale_m)? / ((&next_v * scale_v)?.sqrt()? + eps)?)?;
            let next = ((theta * (1.0 - lr * weight_decay))? - (adjusted * lr)?)?;
            let norms = UpdateNorms {
                weight_sq: sq_norm(theta)?,
                update_sq: sq_norm(&(&next - theta)?)?,
            };
            s.m.set(&next_m)?;
            s.v.set(&next_v)?;
            s.var.set(&next)?;
            out.push((s.name.clone(), norms));
        }
        Ok(out)
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.step_t
    }

    /// The moments as `m.NAME` / `v.NAME` tensors.
    pub fn state(&self) -> HashMap<String, Tensor> {
        self.slots
            .iter()
            .flat_map(|s| {
                [
                    (format!("m.{}", s.name), s.m.as_tensor().clone()),
                    (format!("v.{}", s.name), s.v.as_tensor().clone()),
                ]
            })
            .collect()
    }

    /// Restores moments saved by [`AdamW::state`] after `steps` steps.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        for s in &self.slots {
            for (prefix, var) in [("m", &s.m), ("v", &s.v)] {
                let key = format!("{prefix}.{}", s.name);
                let t = state
                    .get(&key)
                    .ok_or_else(|| Error::usage(format!("optimizer state lacks `{key}`")))?;
                var.set(&t.to_dtype(var.dtype())?)?;
            }
        }
        self.step_t = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Optimizer;

    #[test]
    fn matches_candle_nn_adamw() {
        let dev = Device::Cpu;
        let init = Tensor::new(&[1f32, -2.0, 3.0], &dev).unwrap();
        let (a, b) = (
            Var::from_tensor(&init).unwrap(),
            Var::from_tensor(&init).unwrap(),
        );
        let params = ParamsAdamW {
            lr: 0.1,
            weight_decay: 0.01,
            ..Default::default()
        };
        let mut ours = AdamW::new(&[("w".into(), a.clone())], params.clone()).unwrap();
        let mut theirs = candle_nn::AdamW::new(vec![b.clone()], params).unwrap();
        for _ in 0..3 {
            ours.step(
                &a.as_tensor()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
            .unwrap();
            theirs
                .backward_step(&b.as_tensor().sqr().unwrap().sum_all().unwrap())
                .unwrap();
        }
        assert_eq!(
            a.as_tensor().to_vec1::<f32>().unwrap(),
            b.as_tensor().to_vec1::<f32>().unwrap()
        );
    }
}

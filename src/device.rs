//! Device and dtype names (`cuda:1`, `bf16`), and the dtype a device can compute in.

use candle_core::{DType, Device};

use crate::error::{Error, Result};

/// Parses `cpu`, `cuda`, `cuda:N` or `metal`.
pub fn parse_device(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => {
            let i = i.parse::<usize>().map_err(|_| {
                Error::setting("device", format!("{spec}: `{i}` is not a device index"))
            })?;
            (k, i)
        }
        None => (spec, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::setting(
                    "device",
                    "cuda: this build has no CUDA support; rebuild with `--features cuda`",
                ));
            }
            Device::new_cuda(index)
                .map_err(|e| Error::setting("device", format!("{spec}: cannot open the GPU: {e}")))
        }
        "metal" => {
            if !candle_core::utils::metal_is_available() {
                return Err(Error::setting(
                    "device",
                    "metal: this build has no Metal support; rebuild with `--features metal`",
                ));
            }
            Device::new_metal(index)
                .map_err(|e| Error::setting("device", format!("{spec}: cannot open the GPU: {e}")))
        }
        other => Err(Error::setting(
            "device",
            format!("`{other}` is not known (use cpu, cuda, cuda:N or metal)"),
        )),
    }
}

/// Parses `f32`, `f16` or `bf16`.
pub fn parse_dtype(spec: &str) -> Result<DType> {
    match spec {
        "f32" | "float32" => Ok(DType::F32),
        "f16" | "float16" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        other => Err(Error::setting(
            "dtype",
            format!("`{other}` is not known (use f32, f16 or bf16)"),
        )),
    }
}

/// The dtype to compute in: candle has no bf16 matmul on CPU, so bf16 becomes
/// f32 there.
pub fn compute_dtype(requested: DType, device: &Device) -> DType {
    if requested == DType::BF16 && device.is_cpu() {
        DType::F32
    } else {
        requested
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_dtypes_parse_or_explain() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device("tpu")
            .unwrap_err()
            .to_string()
            .contains("not known"));
        assert!(parse_device("cuda:x")
            .unwrap_err()
            .to_string()
            .contains("device index"));
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda")
            .unwrap_err()
            .to_string()
            .contains("--features cuda"));
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        assert!(parse_dtype("f8")
            .unwrap_err()
            .to_string()
            .contains("not known"));
        assert_eq!(compute_dtype(DType::BF16, &Device::Cpu), DType::F32);
    }
}

//! Finding adapters: every backend wgpu offers on this OS (Vulkan and GL here; Metal and DX12
//! where the OS has them), listed in a stable order so that an index means the same adapter
//! from one run to the next.

use crate::device::{DeviceInfo, DeviceSelector};

/// What to tell a user whose machine shows no adapter.
pub const INSTALL_HINT: &str = "install a Vulkan driver: on Debian or Ubuntu `sudo apt-get install mesa-vulkan-drivers` \
(lavapipe, which runs the kernel on the CPU) or your GPU vendor's driver; `vulkaninfo --summary` \
(package vulkan-tools) shows what the loader finds";

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter found on any backend ({backends}); {INSTALL_HINT}")]
    NoAdapter { backends: String },
    #[error("no adapter matches `{selector}`; `wgminer devices` lists {count} adapter(s)")]
    NoMatch { selector: String, count: usize },
    #[error(
        "adapter {name} does not support compute shaders with storage buffers (it needs Vulkan, Metal, DX12 or GL ES 3.1)"
    )]
    NoCompute { name: String },
    #[error("{name}: could not open the device: {message}")]
    Open { name: String, message: String },
}

/// Sets what the drivers read from the environment when they load; `main` calls it first,
/// before any other thread exists. A value the user set is left alone.
///
/// Mesa's llvmpipe (lavapipe, the CPU "GPU") caps its vectors at 256 bits even where the CPU
/// has AVX-512, unless `LP_NATIVE_VECTOR_WIDTH=512` is set. Wider vectors sweep twice the
/// nonces per instruction and AVX-512 rotates in one (`vprord`), so wgminer asks for them on
/// AVX-512 hosts.
///
/// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` reorders the adapters for
/// programs that take the first, and asks libwayland for the compositor's default GPU on the
/// way, which on a headless machine prints `error: XDG_RUNTIME_DIR is invalid or not set in
/// the environment.` twice before wgminer says a word. wgminer lists every adapter and ranks
/// them itself, so it turns the layer off as its manifest provides
/// (`"disable_environment": {"NODEVICE_SELECT": "1"}` in
/// /usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json).
pub fn prepare_driver_environment() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: `main` calls this first, before any other thread exists to read the
        // environment.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    let avx512 = {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    };
    if let Some(width) = lavapipe_width(std::env::var_os("LP_NATIVE_VECTOR_WIDTH").as_deref(), avx512) {
        // SAFETY: `main` calls this first, before any other thread exists to read the
        // environment.
        unsafe { std::env::set_var("LP_NATIVE_VECTOR_WIDTH", width) };
    }
}

/// The width to set: 512 on an AVX-512 host, unless the user chose one.
fn lavapipe_width(user: Option<&std::ffi::OsStr>, avx512: bool) -> Option<&'static str> {
    (user.is_none() && avx512).then_some("512")
}

/// Every backend (or those `WGPU_BACKEND` names), with a release build's flags in every build:
/// the debug flags route the drivers' own chatter (EGL's "DRI2: failed to load driver" before it
/// falls back to software, the Vulkan loader's "Failed to detect any valid GPUs") into our log
/// as errors, and their validation layers are not what a miner runs under. `WGPU_DEBUG=1` and
/// `WGPU_VALIDATION=1` bring them back.
fn instance() -> wgpu::Instance {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.flags = wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL.with_env();
    wgpu::Instance::new(descriptor)
}

/// Every adapter, in enumeration order (the indices of `wgminer devices`).
pub fn list_adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
}

pub fn describe(info: &wgpu::AdapterInfo) -> DeviceInfo {
    let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
        (false, false) => format!("{} {}", info.driver, info.driver_info),
        (false, true) => info.driver.clone(),
        _ => info.driver_info.clone(),
    };
    DeviceInfo {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        vendor: vendor_name(info.vendor),
        device_type: format!("{:?}", info.device_type),
        driver,
        // A real card's ids; wgpu reports others (lavapipe's is Mesa's 0x10005) that no PCI bus has.
        pci: match (info.device_type, u16::try_from(info.vendor), u16::try_from(info.device)) {
            (wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu, Ok(vendor), Ok(device)) => {
                let bus = crate::device::pci_slot(&info.device_pci_bus_id);
                Some(crate::device::PciId { vendor, device, bus })
            }
            _ => None,
        },
    }
}

fn vendor_name(id: u32) -> String {
    let name = match id {
        0x10de => "NVIDIA",
        0x1002 | 0x1022 => "AMD",
        0x8086 => "Intel",
        0x106b => "Apple",
        0x13b5 => "ARM",
        0x5143 => "Qualcomm",
        0x1010 => "Imagination",
        0x10005 => "Mesa",
        _ => return format!("{id:#06x}"),
    };
    name.to_string()
}

/// Preference for `auto`: lower is better.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, api)
}

/// The adapter a selector names. `Cpu` is not an adapter: the caller handles it.
pub fn select_adapter(selector: &DeviceSelector) -> Result<wgpu::Adapter, GpuError> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        let backends = format!("{:?}", wgpu::Instance::enabled_backend_features());
        return Err(GpuError::NoAdapter { backends });
    }
    let count = adapters.len();
    let no_match = || GpuError::NoMatch { selector: selector.to_string(), count };
    match selector {
        DeviceSelector::Auto | DeviceSelector::Cpu => {
            adapters.into_iter().filter(supports_compute).min_by_key(|a| rank(&a.get_info())).ok_or_else(no_match)
        }
        DeviceSelector::Index(i) => adapters.into_iter().nth(*i).ok_or_else(no_match),
        DeviceSelector::Browser => Err(no_match()),
        DeviceSelector::Name(name) => {
            let needle = name.to_lowercase();
            adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&needle)).ok_or_else(no_match)
        }
    }
}

pub fn supports_compute(adapter: &wgpu::Adapter) -> bool {
    adapter.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        && adapter.limits().max_storage_buffers_per_shader_stage > 0
}

#[cfg(test)]
mod tests {
    use super::lavapipe_width;

    #[test]
    fn wide_vectors_only_on_avx512_and_never_over_the_users_choice() {
        assert_eq!(lavapipe_width(None, true), Some("512"));
        assert_eq!(lavapipe_width(None, false), None);
        assert_eq!(lavapipe_width(Some("256".as_ref()), true), None);
        assert_eq!(lavapipe_width(Some("128".as_ref()), false), None);
    }
}

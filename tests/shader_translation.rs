//! naga validates the kernel and translates it for every backend wgpu targets: SPIR-V (Vulkan),
//! MSL (Metal), HLSL (DX12) and GLSL (GL). A shader that one of them refuses fails here, on a
//! machine that has none of those drivers.

use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn module() -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(wgminer::gpu::kernel::SOURCE).expect("WGSL parses");
    let info =
        Validator::new(ValidationFlags::all(), Capabilities::empty()).validate(&module).expect("the kernel validates");
    // The host overrides both constants; translate with the values it uses by default.
    let constants: naga::back::PipelineConstants =
        [("WORKGROUP_SIZE".to_string(), 64.0), ("NONCES_PER_INVOCATION".to_string(), 64.0)].into_iter().collect();
    let (module, info) =
        naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants).expect("overrides resolve");
    (module.into_owned(), info.into_owned())
}

#[test]
fn translates_to_spirv() {
    let (module, info) = module();
    let words = spv::write_vec(&module, &info, &spv::Options::default(), None).unwrap();
    assert_eq!(words[0], 0x0723_0203, "SPIR-V magic number");
}

#[test]
fn translates_to_msl() {
    let (module, info) = module();
    let pipeline = msl::PipelineOptions::default();
    let (source, _) = msl::write_string(&module, &info, &msl::Options::default(), &pipeline).unwrap();
    assert!(source.contains("kernel void sweep"), "{source}");
}

#[test]
fn translates_to_hlsl() {
    let (module, info) = module();
    let mut source = String::new();
    let options = hlsl::Options::default();
    let pipeline = hlsl::PipelineOptions::default();
    let mut writer = hlsl::Writer::new(&mut source, &options, &pipeline);
    writer.write(&module, &info, None).unwrap();
    assert!(source.contains("[numthreads(64, 1, 1)]"), "{source}");
}

#[test]
fn translates_to_glsl() {
    let (module, info) = module();
    let mut source = String::new();
    let options = glsl::Options { version: glsl::Version::new_gles(310), ..Default::default() };
    let pipeline = glsl::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: "sweep".into(),
        multiview: None,
    };
    let mut writer =
        glsl::Writer::new(&mut source, &module, &info, &options, &pipeline, naga::proc::BoundsCheckPolicies::default())
            .unwrap();
    writer.write().unwrap();
    assert!(source.contains("local_size_x = 64"), "{source}");
}

//! vkstats: what the Vulkan driver makes of compute shaders. For each SPIR-V file given, it
//! builds a compute pipeline (entry point `main`) on the first GPU with
//! VK_KHR_pipeline_executable_properties and prints the driver's statistics of each
//! executable (on NVIDIA: registers per thread, shared memory, local-memory (spill) bytes and
//! the like). With `--ir DIR` it also writes the driver's internal representations, where it
//! offers any.
//!
//!     vkstats [--ir DIR] FILE.b<N>.spv ...
//!
//! N is the number of bindings of set 0: binding 0 is a uniform buffer and 1..N-1 are storage
//! buffers (webattn's contract, src/contract.rs). Every feature the device supports is enabled,
//! so any capability the shaders declare (f16, subgroups, cooperative matrices) is there.

use ash::vk;
use std::ffi::CStr;

fn main() {
    if let Err(e) = run() {
        eprintln!("vkstats: {e}");
        std::process::exit(1);
    }
}

fn bindings_of(path: &str) -> Result<u32, String> {
    let stem = path.trim_end_matches(".spv");
    let n = stem
        .rsplit('.')
        .next()
        .and_then(|s| s.strip_prefix('b'))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| format!("{path}: name it NAME.b<bindings>.spv"))?;
    Ok(n)
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut ir_dir = None;
    if args.first().map(String::as_str) == Some("--ir") {
        if args.len() < 2 {
            return Err("--ir needs a folder".into());
        }
        ir_dir = Some(args[1].clone());
        args.drain(..2);
    }
    if args.is_empty() {
        return Err("usage: vkstats [--ir DIR] FILE.b<N>.spv ...".into());
    }
    let entry = unsafe { ash::Entry::load() }.map_err(|e| format!("no Vulkan loader: {e}"))?;
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
    let instance = unsafe {
        entry.create_instance(
            &vk::InstanceCreateInfo::default().application_info(&app),
            None,
        )
    }
    .map_err(|e| format!("create_instance: {e}"))?;
    let phys = unsafe { instance.enumerate_physical_devices() }
        .map_err(|e| format!("enumerate_physical_devices: {e}"))?;
    let want = ash::khr::pipeline_executable_properties::NAME;
    let pd = phys
        .into_iter()
        .find(|&p| {
            let exts =
                unsafe { instance.enumerate_device_extension_properties(p) }.unwrap_or_default();
            exts.iter()
                .any(|e| e.extension_name_as_c_str().ok() == Some(want))
        })
        .ok_or("no device with VK_KHR_pipeline_executable_properties")?;
    let props = unsafe { instance.get_physical_device_properties(pd) };
    let name = props
        .device_name_as_c_str()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("device: {name}");
    let exts = unsafe { instance.enumerate_device_extension_properties(pd) }
        .map_err(|e| format!("extensions: {e}"))?;
    let has = |n: &CStr| {
        exts.iter()
            .any(|e| e.extension_name_as_c_str().ok() == Some(n))
    };
    let mut ext_names = vec![want.as_ptr()];
    let coop = ash::khr::cooperative_matrix::NAME;
    if has(coop) {
        ext_names.push(coop.as_ptr());
    }
    // Every supported feature, queried then enabled as is.
    let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
    let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut fexe = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
    let mut fcoop = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default();
    let base = {
        let mut f2 = vk::PhysicalDeviceFeatures2::default()
            .push_next(&mut f11)
            .push_next(&mut f12)
            .push_next(&mut f13)
            .push_next(&mut fexe);
        if has(coop) {
            f2 = f2.push_next(&mut fcoop);
        }
        unsafe { instance.get_physical_device_features2(pd, &mut f2) };
        f2.features
    };
    if fexe.pipeline_executable_info == vk::FALSE {
        return Err("pipelineExecutableInfo is not supported".into());
    }
    // The queried structs, unlinked, enabled as they are.
    f11.p_next = std::ptr::null_mut();
    f12.p_next = std::ptr::null_mut();
    f13.p_next = std::ptr::null_mut();
    fexe.p_next = std::ptr::null_mut();
    fcoop.p_next = std::ptr::null_mut();
    let mut feats = vk::PhysicalDeviceFeatures2::default()
        .features(base)
        .push_next(&mut f11)
        .push_next(&mut f12)
        .push_next(&mut f13)
        .push_next(&mut fexe);
    if has(coop) {
        feats = feats.push_next(&mut fcoop);
    }
    let qf = unsafe { instance.get_physical_device_queue_family_properties(pd) }
        .iter()
        .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
        .ok_or("no compute queue")? as u32;
    let prio = [1.0f32];
    let qci = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(qf)
        .queue_priorities(&prio)];
    let dci = vk::DeviceCreateInfo::default()
        .queue_create_infos(&qci)
        .enabled_extension_names(&ext_names)
        .push_next(&mut feats);
    let device = unsafe { instance.create_device(pd, &dci, None) }
        .map_err(|e| format!("create_device: {e}"))?;
    let exe = ash::khr::pipeline_executable_properties::Device::new(&instance, &device);
    for path in &args {
        let n = bindings_of(path)?;
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let module = unsafe {
            device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
        }
        .map_err(|e| format!("{path}: create_shader_module: {e}"))?;
        let binds: Vec<vk::DescriptorSetLayoutBinding> = (0..n)
            .map(|b| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(b)
                    .descriptor_type(if b == 0 {
                        vk::DescriptorType::UNIFORM_BUFFER
                    } else {
                        vk::DescriptorType::STORAGE_BUFFER
                    })
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let dsl = unsafe {
            device.create_descriptor_set_layout(
                &vk::DescriptorSetLayoutCreateInfo::default().bindings(&binds),
                None,
            )
        }
        .map_err(|e| format!("descriptor set layout: {e}"))?;
        let sets = [dsl];
        let layout = unsafe {
            device.create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default().set_layouts(&sets),
                None,
            )
        }
        .map_err(|e| format!("pipeline layout: {e}"))?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        let ci = [vk::ComputePipelineCreateInfo::default()
            .flags(
                vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR
                    | vk::PipelineCreateFlags::CAPTURE_INTERNAL_REPRESENTATIONS_KHR,
            )
            .stage(stage)
            .layout(layout)];
        let pipe = unsafe { device.create_compute_pipelines(vk::PipelineCache::null(), &ci, None) }
            .map_err(|(_, e)| format!("{path}: create_compute_pipelines: {e}"))?[0];
        let info = vk::PipelineInfoKHR::default().pipeline(pipe);
        let exes = unsafe { exe.get_pipeline_executable_properties(&info) }
            .map_err(|e| format!("executable properties: {e}"))?;
        let short = path.rsplit('/').next().unwrap_or(path);
        for (i, _) in exes.iter().enumerate() {
            let ei = vk::PipelineExecutableInfoKHR::default()
                .pipeline(pipe)
                .executable_index(i as u32);
            let stats = unsafe { exe.get_pipeline_executable_statistics(&ei) }
                .map_err(|e| format!("statistics: {e}"))?;
            let mut line = format!("{short}:");
            for s in &stats {
                let n = s
                    .name_as_c_str()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let v = unsafe {
                    match s.format {
                        vk::PipelineExecutableStatisticFormatKHR::BOOL32 => {
                            format!("{}", s.value.b32)
                        }
                        vk::PipelineExecutableStatisticFormatKHR::INT64 => {
                            format!("{}", s.value.i64)
                        }
                        vk::PipelineExecutableStatisticFormatKHR::UINT64 => {
                            format!("{}", s.value.u64)
                        }
                        _ => format!("{}", s.value.f64),
                    }
                };
                line += &format!(" {n}={v};");
            }
            println!("{line}");
            if let Some(dir) = &ir_dir {
                // Two calls: sizes first, then the data.
                let reps = unsafe { exe.get_pipeline_executable_internal_representations(&ei) }
                    .unwrap_or_default();
                let mut bufs: Vec<Vec<u8>> = reps.iter().map(|r| vec![0u8; r.data_size]).collect();
                let mut reps2: Vec<vk::PipelineExecutableInternalRepresentationKHR> = reps
                    .iter()
                    .zip(bufs.iter_mut())
                    .map(|(r, b)| vk::PipelineExecutableInternalRepresentationKHR {
                        data_size: r.data_size,
                        p_data: b.as_mut_ptr().cast(),
                        ..Default::default()
                    })
                    .collect();
                let mut count = reps2.len() as u32;
                let fp = exe.fp();
                let _ = unsafe {
                    (fp.get_pipeline_executable_internal_representations_khr)(
                        device.handle(),
                        &ei,
                        &mut count,
                        reps2.as_mut_ptr(),
                    )
                };
                for (k, (r, b)) in reps2.iter().zip(bufs.iter()).enumerate() {
                    let n = r
                        .name_as_c_str()
                        .map(|c| c.to_string_lossy().into_owned())
                        .unwrap_or_default()
                        .replace([' ', '/'], "_");
                    let f = format!("{dir}/{short}.{i}.{k}.{n}.txt");
                    let _ = std::fs::write(&f, b);
                }
            }
        }
        unsafe {
            device.destroy_pipeline(pipe, None);
            device.destroy_pipeline_layout(layout, None);
            device.destroy_descriptor_set_layout(dsl, None);
            device.destroy_shader_module(module, None);
        }
    }
    unsafe {
        device.destroy_device(None);
        instance.destroy_instance(None);
    }
    Ok(())
}

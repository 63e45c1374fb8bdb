//! The build script's platform decisions (`build/link_plan.rs`), checked for every
//! target on any host: the link lines for Linux, macOS, Windows (MSVC and MinGW) and
//! FreeBSD, the CMake definitions, and the parsing helpers.

#[path = "../build/link_plan.rs"]
mod link_plan;

use std::path::{Path, PathBuf};

use link_plan::{
    Backends, Installed, Lib, Target, cmake_defines, library, link_lines, openmp, parallel_arg,
    prebuilt_dynamic, split_args,
};

fn target(os: &str, env: &str, vendor: &str) -> Target {
    Target {
        os: os.into(),
        env: env.into(),
        arch: if vendor == "apple" {
            "aarch64"
        } else {
            "x86_64"
        }
        .into(),
        vendor: vendor.into(),
        ..Target::default()
    }
}

fn linux() -> Target {
    target("linux", "gnu", "unknown")
}
fn macos() -> Target {
    target("macos", "", "apple")
}
fn msvc() -> Target {
    target("windows", "msvc", "pc")
}
fn mingw() -> Target {
    target("windows", "gnu", "pc")
}

const DIR: &str = "/o/patched/lib";

/// `base` joined with `parts` the host's way, as the plan joins paths.
fn joined(base: &str, parts: &[&str]) -> String {
    let path = parts
        .iter()
        .fold(Path::new(base).to_path_buf(), |p, c| p.join(c));
    path.display().to_string()
}

fn installed(files: &[&str], dynamic: bool) -> Installed {
    Installed {
        lib_dir: PathBuf::from(DIR),
        files: files.iter().map(|f| f.to_string()).collect(),
        dynamic,
    }
}

fn lines(t: &Target, b: &Backends, files: &[&str], dynamic: bool) -> Vec<String> {
    link_lines(t, b, &installed(files, dynamic)).expect("a llama library is present")
}

/// The lines, without the `cargo:` prefix, for easier reading.
fn plan(t: &Target, b: &Backends, files: &[&str], dynamic: bool) -> Vec<String> {
    let all = lines(t, b, files, dynamic);
    all.iter()
        .map(|l| l["cargo:".len()..].to_string())
        .collect()
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

/// Lines that no target but the Unix-like ones may have.
const UNIX_ONLY: [&str; 4] = [
    "rustc-link-lib=stdc++",
    "rustc-link-lib=m",
    "rustc-link-lib=pthread",
    "rustc-link-lib=dl",
];

const STATIC_UNIX: [&str; 5] = [
    "libggml-base.a",
    "libggml-cpu.a",
    "libggml.a",
    "libllama.a",
    "libllama.so",
];

#[test]
fn linux_static() {
    let got = plan(&linux(), &Backends::default(), &STATIC_UNIX, false);
    let want = [
        format!("rustc-link-search=native={DIR}"),
        "rustc-link-lib=static=llama".into(),
        "rustc-link-lib=static=ggml".into(),
        "rustc-link-lib=static=ggml-cpu".into(),
        "rustc-link-lib=static=ggml-base".into(),
        format!("lib_dir={DIR}"),
        "dynamic=0".into(),
        "rustc-link-lib=stdc++".into(),
        "rustc-link-lib=m".into(),
        "rustc-link-lib=pthread".into(),
        "rustc-link-lib=dl".into(),
    ];
    assert_eq!(got, want);
}

#[test]
fn linux_dynamic() {
    let files = [
        "libggml-base.so",
        "libggml.so",
        "libllama.a",
        "libllama.so",
        "libllama.so.0",
    ];
    let got = plan(&linux(), &Backends::default(), &files, true);
    let want = [
        format!("rustc-link-search=native={DIR}"),
        "rustc-link-lib=dylib=llama".into(),
        "rustc-link-lib=dylib=ggml".into(),
        "rustc-link-lib=dylib=ggml-base".into(),
        format!("lib_dir={DIR}"),
        "dynamic=1".into(),
        // RUNPATH, so that LD_LIBRARY_PATH can point a child at the other variant.
        format!("rustc-link-arg=-Wl,--enable-new-dtags,-rpath,{DIR}"),
    ];
    assert_eq!(got, want);
}

#[test]
fn linux_openmp_cuda_vulkan() {
    let b = Backends {
        openmp: true,
        cuda: true,
        vulkan: true,
        ..Backends::default()
    };
    let got = plan(&linux(), &b, &STATIC_UNIX, false);
    for line in [
        "rustc-link-lib=gomp",
        &format!(
            "rustc-link-search=native={}",
            joined("/usr/local/cuda", &["lib64"])
        ),
        &format!(
            "rustc-link-search=native={}",
            joined("/usr/local/cuda", &["lib64", "stubs"])
        ),
        "rustc-link-lib=dylib=cudart",
        "rustc-link-lib=dylib=cublasLt",
        "rustc-link-lib=dylib=vulkan",
    ] {
        assert!(has(&got, line), "{line} missing from {got:#?}");
    }
}

#[test]
fn macos_static_metal() {
    let b = Backends {
        metal: true,
        openmp: true,
        ..Backends::default()
    };
    let files = [
        "libggml-base.a",
        "libggml-metal.a",
        "libggml.a",
        "libllama.a",
    ];
    let got = plan(&macos(), &b, &files, false);
    let tail = [
        "rustc-link-lib=static=llama",
        "rustc-link-lib=static=ggml",
        "rustc-link-lib=static=ggml-metal",
        "rustc-link-lib=static=ggml-base",
        &format!("lib_dir={DIR}"),
        "dynamic=0",
        "rustc-link-lib=c++",
        "rustc-link-lib=framework=Accelerate",
        "rustc-link-lib=framework=Foundation",
        "rustc-link-lib=framework=Metal",
        "rustc-link-lib=framework=MetalKit",
    ];
    // No libstdc++, libm, libpthread, libdl, OpenMP or rpath on Apple.
    assert_eq!(got[1..], tail);
}

#[test]
fn macos_static_without_metal_needs_accelerate_only() {
    let got = plan(&macos(), &Backends::default(), &STATIC_UNIX, false);
    assert!(has(&got, "rustc-link-lib=framework=Accelerate"));
    assert!(
        !got.iter()
            .any(|l| l.contains("Metal") || l.contains("Foundation"))
    );
}

#[test]
fn macos_dynamic_rpath_without_new_dtags() {
    let files = [
        "libggml-base.dylib",
        "libggml.dylib",
        "libllama.dylib",
        "libllama.a",
    ];
    let got = plan(&macos(), &Backends::default(), &files, true);
    assert_eq!(got[1], "rustc-link-lib=dylib=llama");
    assert_eq!(got[3], "rustc-link-lib=dylib=ggml-base");
    assert_eq!(
        got.last().unwrap(),
        &format!("rustc-link-arg=-Wl,-rpath,{DIR}")
    );
    assert!(!got.iter().any(|l| l.contains("enable-new-dtags")));
    assert!(!has(&got, "rustc-link-lib=c++"));
}

#[test]
fn windows_msvc_static() {
    let files = [
        "ggml-base.lib",
        "ggml-cpu.lib",
        "ggml.lib",
        "llama.lib",
        "llama.pc",
    ];
    let got = plan(&msvc(), &Backends::default(), &files, false);
    let want = [
        format!("rustc-link-search=native={DIR}"),
        "rustc-link-lib=static=llama".into(),
        "rustc-link-lib=static=ggml".into(),
        "rustc-link-lib=static=ggml-cpu".into(),
        "rustc-link-lib=static=ggml-base".into(),
        format!("lib_dir={DIR}"),
        "dynamic=0".into(),
        // The C++ runtime comes from the objects' /DEFAULTLIB directives.
        "rustc-link-lib=advapi32".into(),
    ];
    assert_eq!(got, want);
    // OpenMP (vcomp) too: MSVC objects name it; no rpath, no -Wl.
    let b = Backends {
        openmp: true,
        ..Backends::default()
    };
    let got = plan(&msvc(), &b, &files, false);
    assert!(!got.iter().any(|l| l.contains("omp") || l.contains("-Wl")));
    for line in UNIX_ONLY {
        assert!(!has(&got, line), "{line}");
    }
}

#[test]
fn windows_msvc_dynamic() {
    let files = ["ggml-base.lib", "ggml.lib", "llama.lib"];
    let b = Backends {
        cuda: true,
        vulkan: true,
        cuda_path: Some(PathBuf::from("C:/CUDA/v12.8")),
        vulkan_sdk: Some(PathBuf::from("C:/VulkanSDK/1.4")),
        ..Backends::default()
    };
    let got = plan(&msvc(), &b, &files, true);
    let want = [
        format!("rustc-link-search=native={DIR}"),
        // The DLLs: Cargo puts this on PATH for `cargo test`.
        format!(
            "rustc-link-search=native={}",
            joined("/o/patched", &["bin"])
        ),
        "rustc-link-lib=dylib=llama".into(),
        "rustc-link-lib=dylib=ggml".into(),
        "rustc-link-lib=dylib=ggml-base".into(),
        format!("lib_dir={DIR}"),
        "dynamic=1".into(),
    ];
    assert_eq!(got, want);
    let got = plan(&msvc(), &b, &files, false);
    let cuda = joined("C:/CUDA/v12.8", &["lib", "x64"]);
    assert!(has(&got, &format!("rustc-link-search=native={cuda}")));
    let vulkan = joined("C:/VulkanSDK/1.4", &["Lib"]);
    assert!(has(&got, &format!("rustc-link-search=native={vulkan}")));
    assert!(has(&got, "rustc-link-lib=dylib=vulkan-1"));
    assert!(!got.iter().any(|l| l.contains("lib64")));
}

#[test]
fn windows_gnu_static() {
    // ggml drops the `lib` prefix on Windows; llama keeps it.
    let files = [
        "ggml-base.a",
        "ggml-cpu.a",
        "ggml.a",
        "libggml-base.dll.a",
        "libllama.a",
        "libllama.dll.a",
    ];
    let b = Backends {
        openmp: true,
        rpc: true,
        ..Backends::default()
    };
    let got = plan(&mingw(), &b, &files, false);
    let want = [
        format!("rustc-link-search=native={DIR}"),
        "rustc-link-lib=static=llama".into(),
        // `-lggml` would not find ggml.a.
        "rustc-link-lib=static:+verbatim=ggml.a".into(),
        "rustc-link-lib=static:+verbatim=ggml-cpu.a".into(),
        "rustc-link-lib=static:+verbatim=ggml-base.a".into(),
        format!("lib_dir={DIR}"),
        "dynamic=0".into(),
        "rustc-link-lib=stdc++".into(),
        "rustc-link-lib=pthread".into(),
        "rustc-link-lib=advapi32".into(),
        "rustc-link-lib=ws2_32".into(),
        "rustc-link-lib=gomp".into(),
    ];
    assert_eq!(got, want);
}

#[test]
fn windows_gnu_dynamic() {
    let files = [
        "ggml.a",
        "libggml-base.dll.a",
        "libggml.dll.a",
        "libllama.dll.a",
    ];
    let got = plan(&mingw(), &Backends::default(), &files, true);
    let want = [
        format!("rustc-link-search=native={DIR}"),
        format!(
            "rustc-link-search=native={}",
            joined("/o/patched", &["bin"])
        ),
        "rustc-link-lib=dylib=llama".into(),
        "rustc-link-lib=dylib=ggml".into(),
        "rustc-link-lib=dylib=ggml-base".into(),
        format!("lib_dir={DIR}"),
        "dynamic=1".into(),
    ];
    assert_eq!(got, want);
}

#[test]
fn freebsd_links_libcxx_and_no_libdl() {
    let b = Backends {
        openmp: true,
        ..Backends::default()
    };
    let got = plan(&target("freebsd", "", "unknown"), &b, &STATIC_UNIX, false);
    assert!(has(&got, "rustc-link-lib=c++"));
    assert!(has(&got, "rustc-link-lib=omp"));
    assert!(!has(&got, "rustc-link-lib=stdc++") && !has(&got, "rustc-link-lib=dl"));
    let got = plan(
        &target("freebsd", "", "unknown"),
        &b,
        &["libllama.so"],
        true,
    );
    assert_eq!(
        got.last().unwrap(),
        &format!("rustc-link-arg=-Wl,-rpath,{DIR}")
    );
}

#[test]
fn android_has_no_libpthread() {
    let android = target("android", "", "unknown");
    let got = plan(&android, &Backends::default(), &STATIC_UNIX, false);
    let tail = [
        "rustc-link-lib=c++_shared",
        "rustc-link-lib=m",
        "rustc-link-lib=dl",
    ];
    assert_eq!(got[got.len() - 3..], tail);
    assert!(!has(&got, "rustc-link-lib=pthread"));
}

#[test]
fn a_library_found_twice_links_once() {
    // A MinGW prefix holding both spellings of one archive.
    let files = ["ggml-base.a", "ggml.a", "libggml.a", "libllama.a"];
    let got = plan(&mingw(), &Backends::default(), &files, false);
    let libs = got
        .iter()
        .filter(|l| l.starts_with("rustc-link-lib=static"));
    assert_eq!(libs.count(), 3, "{got:#?}");
}

#[test]
fn cxxstdlib_overrides_like_cc() {
    let t = Target {
        cxx_stdlib: Some("c++".into()),
        ..linux()
    };
    let got = plan(&t, &Backends::default(), &STATIC_UNIX, false);
    assert!(has(&got, "rustc-link-lib=c++") && !has(&got, "rustc-link-lib=stdc++"));
    let t = Target {
        cxx_stdlib: Some(String::new()),
        ..linux()
    };
    let got = plan(&t, &Backends::default(), &STATIC_UNIX, false);
    assert!(!got.iter().any(|l| l.contains("c++")));
}

#[test]
fn link_order_llama_ggml_backends_base_last() {
    let files = [
        "libggml-base.a",
        "libggml-vulkan.a",
        "libllama.a",
        "libggml-cpu.a",
        "libggml.a",
        "libggml-cuda.a",
    ];
    for t in [linux(), macos()] {
        let names: Vec<String> = lines(&t, &Backends::default(), &files, false)
            .into_iter()
            .filter_map(|l| {
                l.strip_prefix("cargo:rustc-link-lib=static=")
                    .map(String::from)
            })
            .collect();
        let want = [
            "llama",
            "ggml",
            "ggml-cpu",
            "ggml-cuda",
            "ggml-vulkan",
            "ggml-base",
        ];
        assert_eq!(names, want);
    }
}

#[test]
fn no_llama_is_an_error() {
    let err = link_lines(
        &msvc(),
        &Backends::default(),
        &installed(&["libllama.a"], false),
    );
    assert_eq!(err.unwrap_err(), format!("no llama library in {DIR}"));
}

#[test]
fn library_names() {
    let lib = |name: &str, file: &str| {
        Some(Lib {
            name: name.into(),
            file: file.into(),
        })
    };
    assert_eq!(
        library(&msvc(), "llama.lib", false),
        lib("llama", "llama.lib")
    );
    assert_eq!(
        library(&msvc(), "ggml-base.lib", true),
        lib("ggml-base", "ggml-base.lib")
    );
    assert_eq!(library(&mingw(), "ggml.a", false), lib("ggml", "ggml.a"));
    assert_eq!(library(&mingw(), "libllama.dll.a", false), None);
    assert_eq!(library(&mingw(), "libggml-base.dll.a", false), None);
    assert_eq!(
        library(&mingw(), "libllama.dll.a", true),
        lib("llama", "libllama.dll.a")
    );
    assert_eq!(
        library(&macos(), "libllama.dylib", true),
        lib("llama", "libllama.dylib")
    );
    assert_eq!(library(&macos(), "libllama.so", true), None);
    assert_eq!(library(&linux(), "libllama.so.0", true), None);
    assert_eq!(
        library(&linux(), "libggml-cpu.a", false),
        lib("ggml-cpu", "libggml-cpu.a")
    );
    assert_eq!(library(&linux(), "libllama_sys_shim.a", false), None);
    assert_eq!(library(&linux(), "libggmlx.a", false), None);
}

#[test]
fn prebuilt_kind() {
    let files = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let both = files(&["libllama.a", "libllama.so"]);
    assert_eq!(prebuilt_dynamic(&linux(), &both, false), Some(false));
    assert_eq!(
        prebuilt_dynamic(&linux(), &files(&["libllama.so"]), false),
        Some(true)
    );
    assert_eq!(
        prebuilt_dynamic(&linux(), &files(&["libggml.a"]), false),
        None
    );
    // An MSVC llama.lib is an import library exactly when bin/llama.dll exists.
    let lib = files(&["llama.lib"]);
    assert_eq!(prebuilt_dynamic(&msvc(), &lib, true), Some(true));
    assert_eq!(prebuilt_dynamic(&msvc(), &lib, false), Some(false));
    let dll_a = files(&["libllama.dll.a"]);
    assert_eq!(prebuilt_dynamic(&mingw(), &dll_a, true), Some(true));
}

fn define<'a>(d: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    d.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

#[test]
fn msvc_runtime_follows_crt_static() {
    let dynamic_crt = cmake_defines(&msvc(), false);
    let runtime = "CMAKE_MSVC_RUNTIME_LIBRARY";
    assert_eq!(define(&dynamic_crt, runtime), Some("MultiThreadedDLL"));
    assert_eq!(
        define(&dynamic_crt, "CMAKE_POLICY_DEFAULT_CMP0091"),
        Some("NEW")
    );
    let t = Target {
        crt_static: true,
        ..msvc()
    };
    assert_eq!(
        define(&cmake_defines(&t, false), runtime),
        Some("MultiThreaded")
    );
    // Not for MinGW, whatever its CRT.
    let t = Target {
        crt_static: true,
        ..mingw()
    };
    assert_eq!(define(&cmake_defines(&t, false), runtime), None);
}

#[test]
fn msvc_keeps_exceptions_and_optimisation() {
    let d = cmake_defines(&msvc(), false);
    assert!(define(&d, "CMAKE_CXX_FLAGS").unwrap().contains("/EHsc"));
    assert!(
        define(&d, "CMAKE_CXX_FLAGS_RELEASE")
            .unwrap()
            .contains("/O2")
    );
    assert!(
        define(&d, "CMAKE_C_FLAGS_RELEASE")
            .unwrap()
            .contains("/DNDEBUG")
    );
    assert_eq!(
        define(&cmake_defines(&linux(), false), "CMAKE_CXX_FLAGS"),
        None
    );
}

#[test]
fn install_rpath_and_deployment_target() {
    let rpath = "CMAKE_INSTALL_RPATH";
    assert_eq!(
        define(&cmake_defines(&linux(), true), rpath),
        Some("$ORIGIN")
    );
    assert_eq!(define(&cmake_defines(&linux(), false), rpath), None);
    assert_eq!(
        define(&cmake_defines(&macos(), true), rpath),
        Some("@loader_path")
    );
    assert_eq!(define(&cmake_defines(&msvc(), true), rpath), None);
    assert_eq!(define(&cmake_defines(&mingw(), true), rpath), None);
    let osx = "CMAKE_OSX_DEPLOYMENT_TARGET";
    assert_eq!(define(&cmake_defines(&macos(), false), osx), None);
    let t = Target {
        deployment_target: Some("13.3".into()),
        ..macos()
    };
    assert_eq!(define(&cmake_defines(&t, false), osx), Some("13.3"));
}

#[test]
fn openmp_and_parallelism() {
    assert!(openmp(&linux(), true) && openmp(&msvc(), true) && openmp(&mingw(), true));
    assert!(!openmp(&macos(), true) && !openmp(&linux(), false));
    assert_eq!(parallel_arg(&linux(), "4").as_deref(), Some("-j4"));
    assert_eq!(parallel_arg(&mingw(), "4").as_deref(), Some("-j4"));
    assert_eq!(parallel_arg(&msvc(), "4"), None);
}

#[test]
fn cmake_args_keep_quoted_spaces() {
    let args = split_args(r#"  -DA=1 "-DB=C:\Program Files\x"   -DC='a b' -DD="" "#);
    let want = ["-DA=1", r"-DB=C:\Program Files\x", "-DC=a b", "-DD="];
    assert_eq!(args, want);
    assert_eq!(split_args("   "), Vec::<String>::new());
    assert_eq!(split_args("''"), [""]);
}

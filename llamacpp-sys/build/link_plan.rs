//! The build script's platform decisions, as plain data in and strings out.
//!
//! Nothing here reads the environment or the file system: `config.rs` gathers the
//! [`Target`] facts, `cmake_build.rs` lists the installed files, `link.rs` prints what
//! [`link_lines`] returns. `tests/link_plan.rs` includes this file, so every platform's
//! branch is checked on any host.

use std::path::{Path, PathBuf};

/// The target (Cargo's `CARGO_CFG_TARGET_*`) and the variables that shape its C++ build.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `CARGO_CFG_TARGET_OS`: `linux`, `macos`, `ios`, `windows`, `freebsd`, ...
    pub os: String,
    /// `CARGO_CFG_TARGET_ENV`: `gnu`, `msvc`, `musl`, or empty (Apple, most BSDs).
    pub env: String,
    /// `CARGO_CFG_TARGET_ARCH`.
    pub arch: String,
    /// `CARGO_CFG_TARGET_VENDOR`: `apple`, `pc`, `unknown`, ...
    pub vendor: String,
    /// `crt-static` is in `CARGO_CFG_TARGET_FEATURE`: Rust links the C runtime statically.
    pub crt_static: bool,
    /// The Apple deployment target from the environment (`MACOSX_DEPLOYMENT_TARGET`, ...).
    pub deployment_target: Option<String>,
    /// `CXXSTDLIB`, which `cc` obeys too: the C++ standard library to link (empty: none).
    pub cxx_stdlib: Option<String>,
}

impl Target {
    fn apple(&self) -> bool {
        self.vendor == "apple"
    }
    fn msvc(&self) -> bool {
        self.env == "msvc"
    }
    fn windows(&self) -> bool {
        self.os == "windows"
    }
}

/// The backends and SDK locations that add link lines of their own.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    /// The `metal` feature.
    pub metal: bool,
    /// The `openmp` feature, as requested (see [`openmp`]).
    pub openmp: bool,
    /// The `cuda` feature.
    pub cuda: bool,
    /// The `vulkan` feature.
    pub vulkan: bool,
    /// The `rpc` feature.
    pub rpc: bool,
    /// `CUDA_PATH`.
    pub cuda_path: Option<PathBuf>,
    /// `VULKAN_SDK`.
    pub vulkan_sdk: Option<PathBuf>,
}

/// What a build installed, or what a prebuilt install holds.
#[derive(Debug, Clone, Default)]
pub struct Installed {
    /// The directory of the static archives or import libraries.
    pub lib_dir: PathBuf,
    /// The file names in `lib_dir`.
    pub files: Vec<String>,
    /// Shared libraries (link kind `dylib`) rather than static archives.
    pub dynamic: bool,
}

/// A llama or ggml library: `name` is its CMake target, `file` what is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lib {
    /// `llama`, `ggml`, `ggml-base`, `ggml-cpu`, ...
    pub name: String,
    /// `libllama.a`, `ggml-base.a` (MinGW: ggml drops the prefix), `llama.lib`, ...
    pub file: String,
}

/// File endings of linkable libraries of one kind; the first is the one `-l` finds.
fn suffixes(t: &Target, dynamic: bool) -> &'static [&'static str] {
    match (t.msvc(), t.windows(), t.apple(), dynamic) {
        // Static archives and import libraries alike.
        (true, ..) => &[".lib"],
        (false, true, _, true) => &[".dll.a"],
        (false, false, true, true) => &[".dylib"],
        (false, false, false, true) => &[".so"],
        (false, ..) => &[".a"],
    }
}

/// The llama or ggml library in `file`, if it is one of this kind for this target.
pub fn library(t: &Target, file: &str, dynamic: bool) -> Option<Lib> {
    let stem = suffixes(t, dynamic)
        .iter()
        .find_map(|s| file.strip_suffix(s))?;
    // A MinGW import library (`.dll.a`) also ends in `.a`.
    if stem.ends_with(".dll") {
        return None;
    }
    let name = stem.strip_prefix("lib").unwrap_or(stem);
    let ours = name == "llama" || name == "ggml" || name.starts_with("ggml-");
    ours.then(|| Lib {
        name: name.to_string(),
        file: file.to_string(),
    })
}

/// Whether a prebuilt install whose library directory holds `files` is shared; `None`
/// without a llama. `llama_dll`: `bin/llama.dll` exists, so an MSVC `llama.lib` imports it.
pub fn prebuilt_dynamic(t: &Target, files: &[String], llama_dll: bool) -> Option<bool> {
    let has = |dynamic| {
        let llama = |f: &String| library(t, f, dynamic).is_some_and(|l| l.name == "llama");
        files.iter().any(llama)
    };
    match (has(false), has(true)) {
        (false, false) => None,
        _ if t.msvc() => Some(llama_dll),
        (is_static, _) => Some(!is_static),
    }
}

/// Whether ggml is built with OpenMP: Apple's clang has none (CMake would drop it with a
/// warning, or find a Homebrew libomp that nothing links), so only elsewhere.
pub fn openmp(t: &Target, requested: bool) -> bool {
    requested && !t.apple()
}

/// CMake definitions the target needs beyond the feature table.
pub fn cmake_defines(t: &Target, dynamic: bool) -> Vec<(&'static str, String)> {
    let mut d: Vec<(&'static str, String)> = Vec::new();
    if t.msvc() {
        // `cmake` with `no_default_flags` passes no /MD or /MT: choose the CRT Rust links.
        let crt = if t.crt_static {
            "MultiThreaded"
        } else {
            "MultiThreadedDLL"
        };
        d.push(("CMAKE_POLICY_DEFAULT_CMP0091", "NEW".into()));
        d.push(("CMAKE_MSVC_RUNTIME_LIBRARY", crt.into()));
        // `cmake` sets CMAKE_<LANG>_FLAGS (and, for Visual Studio generators, the
        // _RELEASE ones) from `cc`, replacing CMake's MSVC defaults: /EHsc (C++ unwinding)
        // and /O2 /DNDEBUG would be lost. Restore them.
        d.push(("CMAKE_C_FLAGS", "/DWIN32 /D_WINDOWS".into()));
        d.push(("CMAKE_CXX_FLAGS", "/DWIN32 /D_WINDOWS /GR /EHsc".into()));
        d.push(("CMAKE_C_FLAGS_RELEASE", "/O2 /Ob2 /DNDEBUG".into()));
        d.push(("CMAKE_CXX_FLAGS_RELEASE", "/O2 /Ob2 /DNDEBUG".into()));
    }
    if let (true, Some(v)) = (t.apple(), &t.deployment_target) {
        d.push(("CMAKE_OSX_DEPLOYMENT_TARGET", v.clone()));
    }
    // Installed shared libraries find their siblings next to themselves (no rpath on Windows).
    let origin = match (t.apple(), t.windows()) {
        (true, _) => Some("@loader_path"),
        (false, false) => Some("$ORIGIN"),
        (false, true) => None,
    };
    if let (true, Some(o)) = (dynamic, origin) {
        d.push(("CMAKE_INSTALL_RPATH", o.into()));
    }
    d
}

/// The native build tool's job argument, where it has one of that form: MSBuild (the
/// default generator for MSVC) rejects `-jN`; `cmake --build --parallel` serves it.
pub fn parallel_arg(t: &Target, level: &str) -> Option<String> {
    (!t.msvc()).then(|| format!("-j{level}"))
}

/// Splits `LLAMACPP_SYS_CMAKE_ARGS`: whitespace separates, `"…"` or `'…'` keep spaces
/// (`-DX="C:\Program Files\y"`); backslashes are literal, for Windows paths.
pub fn split_args(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => (quote, any) = (Some(c), true),
            (None, c) if c.is_whitespace() => {
                if std::mem::take(&mut any) {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Static archives resolve left to right: llama, then ggml, its backends, ggml-base last.
fn rank(name: &str) -> u8 {
    match name {
        "llama" => 0,
        "ggml" => 1,
        "ggml-base" => 3,
        _ => 2,
    }
}

fn lib_line(t: &Target, lib: &Lib, dynamic: bool) -> String {
    let kind = if dynamic { "dylib" } else { "static" };
    let plain = match t.msvc() {
        true => format!("{}.lib", lib.name),
        false => format!("lib{}{}", lib.name, suffixes(t, dynamic)[0]),
    };
    if lib.file == plain {
        format!("cargo:rustc-link-lib={kind}={}", lib.name)
    } else {
        // `-lggml` finds no `ggml.a`: name the file.
        format!("cargo:rustc-link-lib={kind}:+verbatim={}", lib.file)
    }
}

/// The C++ standard library, chosen as `cc` chooses it for the shim.
fn cxx_stdlib(t: &Target) -> Option<String> {
    if let Some(s) = &t.cxx_stdlib {
        return Some(s.clone()).filter(|s| !s.is_empty());
    }
    let lib = match t.os.as_str() {
        _ if t.msvc() => return None,
        _ if t.apple() => "c++",
        "freebsd" | "openbsd" => "c++",
        "android" => "c++_shared",
        _ => "stdc++",
    };
    Some(lib.into())
}

/// What static ggml needs from the system: the C++ runtime, frameworks, OpenMP.
fn system_libs(t: &Target, b: &Backends) -> Vec<String> {
    let mut libs: Vec<String> = cxx_stdlib(t).into_iter().collect();
    if t.apple() {
        // GGML_ACCELERATE is on by default: ggml-cpu uses Accelerate's BLAS and vDSP.
        libs.push("framework=Accelerate".into());
        if b.metal {
            libs.extend(["Foundation", "Metal", "MetalKit"].map(|f| format!("framework={f}")));
        }
    } else if t.windows() {
        // MinGW's posix-thread libstdc++ inlines winpthread calls into ggml and llama.
        libs.extend((!t.msvc()).then(|| "pthread".into()));
        // ggml-cpu reads the CPU name from the registry; ggml-rpc uses sockets.
        libs.push("advapi32".into());
        libs.extend(b.rpc.then(|| "ws2_32".into()));
    } else {
        // Bionic has no separate libpthread; the BSDs keep dlopen in libc.
        let os = t.os.as_str();
        libs.push("m".into());
        libs.extend((os != "android").then(|| "pthread".into()));
        libs.extend(matches!(os, "linux" | "android").then(|| "dl".into()));
    }
    if openmp(t, b.openmp) && !t.msvc() {
        // MSVC's /openmp objects name vcomp.lib themselves.
        let omp = match (t.env.as_str(), t.os.as_str()) {
            ("gnu" | "musl", _) => "gomp",
            _ => "omp",
        };
        libs.push(omp.into());
    }
    libs.into_iter()
        .map(|l| format!("cargo:rustc-link-lib={l}"))
        .collect()
}

/// The CUDA runtime and the Vulkan loader, linked dynamically in every case.
fn sdk_libs(t: &Target, b: &Backends) -> Vec<String> {
    let search = |dir: PathBuf| format!("cargo:rustc-link-search=native={}", dir.display());
    let mut out = Vec::new();
    if b.cuda {
        let default = (!t.windows()).then(|| PathBuf::from("/usr/local/cuda"));
        if let Some(cuda) = b.cuda_path.clone().or(default) {
            match t.windows() {
                true => out.push(search(cuda.join("lib").join(match t.arch.as_str() {
                    "x86" => "Win32",
                    _ => "x64",
                }))),
                false => {
                    out.extend([cuda.join("lib64"), cuda.join("lib64").join("stubs")].map(search))
                }
            }
        }
        for lib in ["cudart", "cublas", "cublasLt", "cuda"] {
            out.push(format!("cargo:rustc-link-lib=dylib={lib}"));
        }
    }
    if b.vulkan {
        let sdk_lib = if t.windows() { "Lib" } else { "lib" };
        out.extend(b.vulkan_sdk.as_ref().map(|s| search(s.join(sdk_lib))));
        let loader = if t.windows() { "vulkan-1" } else { "vulkan" };
        out.push(format!("cargo:rustc-link-lib=dylib={loader}"));
    }
    out
}

/// The rpath to the shared libraries: none on Windows, no `--enable-new-dtags` for ld64
/// (RUNPATH on Linux lets `LD_LIBRARY_PATH` override it).
fn rpath(t: &Target, dir: &Path) -> Option<String> {
    let flag = match t.os.as_str() {
        "windows" => return None,
        "linux" | "android" => "-Wl,--enable-new-dtags,-rpath,",
        _ => "-Wl,-rpath,",
    };
    Some(format!("cargo:rustc-link-arg={flag}{}", dir.display()))
}

/// Every `cargo:` line for linking what `inst` holds.
pub fn link_lines(t: &Target, b: &Backends, inst: &Installed) -> Result<Vec<String>, String> {
    let dynamic = inst.dynamic;
    let mut libs: Vec<Lib> = inst
        .files
        .iter()
        .filter_map(|f| library(t, f, dynamic))
        .collect();
    libs.sort_by(|x, y| (rank(&x.name), &x.name).cmp(&(rank(&y.name), &y.name)));
    libs.dedup_by(|x, y| x.name == y.name);
    if !libs.iter().any(|l| l.name == "llama") {
        return Err(format!("no llama library in {}", inst.lib_dir.display()));
    }
    let dir = &inst.lib_dir;
    let mut out = vec![format!("cargo:rustc-link-search=native={}", dir.display())];
    if let (true, true, Some(root)) = (t.windows(), dynamic, dir.parent()) {
        // DLLs install to bin/: Cargo puts link-search dirs under OUT_DIR on PATH for
        // `cargo run` and `cargo test`.
        out.push(format!(
            "cargo:rustc-link-search=native={}",
            root.join("bin").display()
        ));
    }
    out.extend(libs.iter().map(|l| lib_line(t, l, dynamic)));
    // Metadata for dependents' build scripts (DEP_LLAMACPP_*): they add the rpath to
    // their own binaries, which this crate's link args cannot reach.
    out.push(format!("cargo:lib_dir={}", dir.display()));
    out.push(format!("cargo:dynamic={}", u8::from(dynamic)));
    if dynamic {
        // Shared libraries name their own dependencies.
        out.extend(rpath(t, dir));
    } else {
        out.extend(system_libs(t, b));
        out.extend(sdk_libs(t, b));
    }
    Ok(out)
}

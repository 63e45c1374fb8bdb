// Runtime for running Metal (MSL) compute kernels as C++ on the CPU, for .ci/metal-check.sh.
//
// A kernel file goes through kernel_to_cpp.sed, which rewrites the MSL constructs that C++ cannot
// express into the macros and types below; everything else in it is compiled as written:
//   - function constants   -> MSL_FUNCTION_CONSTANT: a global that the emulator sets from the
//                             pipeline's constant values before each dispatch
//   - [[host_name]] lines  -> MSL_HOST_NAME: registers the kernel under its host name, so that
//                             the emulated library finds the same names the real one does
//   - builtin parameters   -> ::msl::builtin<tag, T>: the parameter keeps its type (by derivation
//     ([[thread_position_in_threadgroup]] etc.)   or conversion) and tells the invoker what to pass
//   - [[threadgroup(N)]]   -> ::msl::tgmem<T, N>: shared memory of the threadgroup
// The invoker deduces the kernel's signature, so that a kernel that gains a buffer or a builtin
// needs no change here: every parameter that is not a builtin or threadgroup memory takes the next
// argument-table slot (Metal numbers buffers and set_bytes data in one table, in order).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

typedef unsigned int   uint;
typedef unsigned short ushort;

namespace metal {

struct uint3   { uint   x, y, z; };
struct ushort3 { ushort x, y, z; };

// the float vectors a GDN kernel variant may use (the disabled branch of the kernel file and a
// two-sums-at-once simd_sum); components and arithmetic, no swizzles
struct float2 {
    float x, y;
    float & operator[](int i) { return this->*m[i]; }
    float   operator[](int i) const { return this->*m[i]; }
    static constexpr float float2::*m[] = {&float2::x, &float2::y};
};
struct float4 {
    float x, y, z, w;
    float & operator[](int i) { return this->*m[i]; }
    float   operator[](int i) const { return this->*m[i]; }
    static constexpr float float4::*m[] = {&float4::x, &float4::y, &float4::z, &float4::w};
};
template <class V> constexpr bool is_floatn = std::is_same_v<V, float2> || std::is_same_v<V, float4>;
#define MSL_VEC_OP(op)                                                                          \
    template <class V, class = std::enable_if_t<is_floatn<V>>> V operator op(V a, V b) {       \
        for (size_t i = 0; i < sizeof(V) / 4; i++) a[i] = a[i] op b[i];                         \
        return a;                                                                               \
    }                                                                                           \
    template <class V, class = std::enable_if_t<is_floatn<V>>> V operator op(V a, float b) {   \
        for (size_t i = 0; i < sizeof(V) / 4; i++) a[i] = a[i] op b;                            \
        return a;                                                                               \
    }                                                                                           \
    template <class V, class = std::enable_if_t<is_floatn<V>>> V & operator op##=(V & a, V b) { \
        return a = a op b;                                                                      \
    }
MSL_VEC_OP(+)
MSL_VEC_OP(-)
MSL_VEC_OP(*)
#undef MSL_VEC_OP

// MSL's float math; std:: float overloads so that the CPU does float (not double) math like the GPU
inline float exp(float x) { return std::exp(x); }
inline float sqrt(float x) { return std::sqrt(x); }
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
inline float fabs(float x) { return std::fabs(x); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };

}  // namespace metal

namespace msl {

// what one emulated thread knows about its place in the grid
struct coords {
    metal::uint3 tgpig;  // threadgroup position in grid
    metal::uint3 tpitg;  // thread position in threadgroup
    metal::uint3 ntg;    // threads per threadgroup
    metal::uint3 ntgpg;  // threadgroups per grid
    uint         tiitg;  // thread index in threadgroup
    uint         nsg;    // simdgroups per threadgroup
};

// tags named after the MSL attributes (the sed script writes attr::<attribute>)
namespace attr {
#define MSL_ATTR(name, ...) \
    struct name { static std::array<uint, 3> get(const coords & c) { return __VA_ARGS__; } };
MSL_ATTR(threadgroup_position_in_grid, {c.tgpig.x, c.tgpig.y, c.tgpig.z})
MSL_ATTR(thread_position_in_threadgroup, {c.tpitg.x, c.tpitg.y, c.tpitg.z})
MSL_ATTR(threads_per_threadgroup, {c.ntg.x, c.ntg.y, c.ntg.z})
MSL_ATTR(threadgroups_per_grid, {c.ntgpg.x, c.ntgpg.y, c.ntgpg.z})
MSL_ATTR(thread_position_in_grid, {c.tgpig.x * c.ntg.x + c.tpitg.x, c.tgpig.y * c.ntg.y + c.tpitg.y,
                                   c.tgpig.z * c.ntg.z + c.tpitg.z})
MSL_ATTR(thread_index_in_threadgroup, {c.tiitg, 0, 0})
MSL_ATTR(thread_index_in_simdgroup, {c.tiitg % 32, 0, 0})
MSL_ATTR(simdgroup_index_in_threadgroup, {c.tiitg / 32, 0, 0})
MSL_ATTR(threads_per_simdgroup, {32, 0, 0})
MSL_ATTR(simdgroups_per_threadgroup, {c.nsg, 0, 0})
#undef MSL_ATTR
}  // namespace attr

// a builtin parameter: a vector type is a base (so .x/.y/.z read as in MSL), a scalar converts
template <class Tag, class T, bool = std::is_class_v<T>> struct builtin : T {
    static builtin from(const coords & c) {
        const auto v = Tag::get(c);
        builtin r;
        r.x = v[0], r.y = v[1], r.z = v[2];
        return r;
    }
};
template <class Tag, class T> struct builtin<Tag, T, false> {
    T value;
    operator T() const { return value; }
    static builtin from(const coords & c) { return {(T) Tag::get(c)[0]}; }
};

// threadgroup memory at index N (set_threadgroup_memory_size); explicit casts to other pointee
// types work as in MSL, implicit use is as a T *
template <class T, int N> struct tgmem {
    static constexpr int index = N;
    T * p;
    operator T *() const { return p; }
    template <class U> explicit operator U *() const { return (U *) p; }
};

template <class X> struct param_kind { static constexpr int value = 0; };  // 0: argument-table slot
template <class Tag, class T, bool C> struct param_kind<builtin<Tag, T, C>> { static constexpr int value = 1; };
template <class T, int N> struct param_kind<tgmem<T, N>> { static constexpr int value = 2; };

using generic_fn = void (*)();
using thread_fn  = void (*)(generic_fn fn, const coords & c, void * const * slots, void * const * tgmem);

template <class... A> struct invoker {
    // the argument-table slot of each parameter (-1: builtin or threadgroup memory)
    static constexpr std::array<int, sizeof...(A) + 1> slots() {
        std::array<int, sizeof...(A) + 1> r{};
        const int kinds[] = {param_kind<std::remove_cv_t<A>>::value..., -1};
        int next = 0;
        for (size_t i = 0; i < sizeof...(A); i++) r[i] = kinds[i] == 0 ? next++ : -1;
        r[sizeof...(A)] = next;
        return r;
    }

    template <class X> static X make(const coords & c, void * const * s, void * const * tg, int slot) {
        using P = std::remove_cv_t<X>;
        if constexpr (param_kind<P>::value == 1) {
            return P::from(c);
        } else if constexpr (param_kind<P>::value == 2) {
            return P{(decltype(P::p)) tg[P::index]};
        } else if constexpr (std::is_reference_v<X>) {
            return *static_cast<std::remove_reference_t<X> *>(s[slot]);
        } else {
            static_assert(std::is_pointer_v<X>, "kernel parameter that is neither a buffer, bytes nor a builtin");
            return (X) s[slot];
        }
    }

    template <size_t... I>
    static void call(generic_fn fn, const coords & c, void * const * s, void * const * tg, std::index_sequence<I...>) {
        constexpr auto idx = slots();
        reinterpret_cast<void (*)(A...)>(fn)(make<A>(c, s, tg, idx[I])...);
    }

    static void run(generic_fn fn, const coords & c, void * const * s, void * const * tg) {
        call(fn, c, s, tg, std::index_sequence_for<A...>{});
    }
};

// the kernels and function constants of the compiled kernel files, by name / index
struct kernel_info {
    std::string name;
    generic_fn  fn;
    thread_fn   run;
    int         n_slots;  // argument-table slots the kernel reads
};
void register_kernel(const kernel_info & k);
const kernel_info * find_kernel(const std::string & name);

struct kernel_reg {
    template <class... A> kernel_reg(const char * name, void (*fn)(A...)) {
        register_kernel({name, reinterpret_cast<generic_fn>(fn), &invoker<A...>::run, invoker<A...>::slots()[sizeof...(A)]});
    }
};

struct fc_reg {
    fc_reg(int index, const char * name, void (*set)(int64_t));
};
// before a dispatch: poison every function constant, then set those the pipeline defines
void set_function_constants(const int * idx, const int64_t * val, int n);

// per-thread SIMD-group exchange used by simd_sum: writes this lane's value, waits for the
// simdgroup, and returns where the 32 lanes' values are (active: lanes that took part)
struct simd_view {
    const unsigned char * base;
    size_t                stride;
    uint32_t              active;
};
simd_view simd_exchange(const void * v, size_t size);
void      barrier_simdgroup();
void      barrier_threadgroup();

// runs every threadgroup of a dispatch, one after another, one OS thread per Metal thread
void dispatch(const kernel_info & k, metal::uint3 ntgpg, metal::uint3 ntg, void * const * slots,
              const size_t * tgmem_size, int n_tgmem);

}  // namespace msl

namespace metal {
// sums over the active lanes in lane order (deterministic; Metal's order differs, hence the NMSE
// threshold of the check rather than exact equality)
template <class T> inline T simd_sum(T x) {
    static_assert(sizeof(T) <= 64, "simd_sum of a type wider than the exchange slot");
    const msl::simd_view v = msl::simd_exchange(&x, sizeof(T));
    bool first = true;
    T    r{};
    for (int l = 0; l < 32; l++) {
        if (!(v.active & (1u << l))) continue;
        T y;
        std::memcpy((void *) &y, v.base + l * v.stride, sizeof(T));
        r     = first ? y : r + y;
        first = false;
    }
    return r;
}
inline void simdgroup_barrier(mem_flags) { msl::barrier_simdgroup(); }
inline void threadgroup_barrier(mem_flags) { msl::barrier_threadgroup(); }
}  // namespace metal

#define MSL_CAT2(a, b) a##b
#define MSL_CAT(a, b)  MSL_CAT2(a, b)

#define MSL_FUNCTION_CONSTANT(T, name, index) \
    T name;                                   \
    static ::msl::fc_reg MSL_CAT(msl_fc_, __LINE__)((index), #name, [](int64_t v) { name = (T) v; })

#define MSL_HOST_NAME(name, ...) static ::msl::kernel_reg MSL_CAT(msl_kernel_, __LINE__)(name, &__VA_ARGS__)

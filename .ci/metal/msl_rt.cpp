// Execution side of msl_rt.h: kernel / function-constant registries and the threadgroup runner.
//
// One OS thread per Metal thread, so that a kernel's code runs unchanged (each thread keeps its
// own registers, e.g. the GDN kernel's state row) and a SIMD-group reduction is a real rendezvous:
// a lane that reads the sum before every lane wrote its part would be a bug here as on the GPU.
// Threadgroups run one after another; the threads of one threadgroup run concurrently.
#include "msl_rt.h"

#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace msl {

static std::map<std::string, kernel_info> & kernel_registry() {
    static std::map<std::string, kernel_info> r;  // function-local: filled during static init
    return r;
}

void register_kernel(const kernel_info & k) {
    if (!kernel_registry().emplace(k.name, k).second) {
        fprintf(stderr, "msl_rt: kernel %s registered twice\n", k.name.c_str());
        abort();
    }
}

const kernel_info * find_kernel(const std::string & name) {
    auto it = kernel_registry().find(name);
    return it == kernel_registry().end() ? nullptr : &it->second;
}

struct fc_info {
    int         index;
    std::string name;
    void (*set)(int64_t);
};

static std::vector<fc_info> & fc_registry() {
    static std::vector<fc_info> r;
    return r;
}

fc_reg::fc_reg(int index, const char * name, void (*set)(int64_t)) { fc_registry().push_back({index, name, set}); }

void set_function_constants(const int * idx, const int64_t * val, int n) {
    for (const fc_info & fc : fc_registry()) {
        // Metal refuses to build a pipeline whose function uses an undefined constant; a constant
        // the host forgot reads as this odd value instead, which no sane shape matches
        fc.set(-12345);
        for (int i = 0; i < n; i++) {
            if (idx[i] == fc.index) fc.set(val[i]);
        }
    }
}

// --- threadgroup runner ---------------------------------------------------------------------

struct simdgroup_state {
    std::optional<std::barrier<>> bar;
    // two slot sets used alternately: the write of call n+1 cannot clobber call n's values while a
    // slower lane still reads them, because it happens after the barrier of call n+1, which that
    // lane reaches only after reading; so one barrier per simd_sum is enough
    alignas(64) unsigned char slot[2][32][64];
    uint32_t gen[2][32];  // call number each lane wrote into its slot (lanes that exited never match)
};

struct threadgroup_state {
    std::vector<simdgroup_state>  sg;
    std::optional<std::barrier<>> bar;
    int                           n_threads;
};

struct lane_state {
    threadgroup_state * tg;
    int                 sg;
    int                 lane;
    uint32_t            calls;
};

static thread_local lane_state * t_lane = nullptr;

static lane_state & current_lane() {
    if (!t_lane) {
        fprintf(stderr, "msl_rt: a SIMD-group function called outside of a dispatch\n");
        abort();
    }
    return *t_lane;
}

simd_view simd_exchange(const void * v, size_t size) {
    lane_state &      L = current_lane();
    simdgroup_state & S = L.tg->sg[L.sg];
    const uint32_t    c = L.calls++;
    const int         p = c & 1;
    memcpy(S.slot[p][L.lane], v, size);
    S.gen[p][L.lane] = c;
    S.bar->arrive_and_wait();
    uint32_t active = 0;
    for (int l = 0; l < 32; l++) {
        if (S.gen[p][l] == c) active |= 1u << l;
    }
    return {&S.slot[p][0][0], sizeof(S.slot[p][0]), active};
}

void barrier_simdgroup() {
    lane_state & L = current_lane();
    L.tg->sg[L.sg].bar->arrive_and_wait();
}

void barrier_threadgroup() { current_lane().tg->bar->arrive_and_wait(); }

void dispatch(const kernel_info & k, metal::uint3 ntgpg, metal::uint3 ntg, void * const * slots,
              const size_t * tgmem_size, int n_tgmem) {
    const int n_threads = (int) (ntg.x * ntg.y * ntg.z);
    const int n_sg      = (n_threads + 31) / 32;
    if (n_threads <= 0 || n_threads > 1024) {
        fprintf(stderr, "msl_rt: %s dispatched with %d threads per threadgroup\n", k.name.c_str(), n_threads);
        abort();
    }

    threadgroup_state tg;
    tg.sg        = std::vector<simdgroup_state>(n_sg);
    tg.n_threads = n_threads;

    // threadgroup memory is not initialised on the GPU either: NaN bytes make a read before write show
    std::vector<std::unique_ptr<unsigned char[]>> mem(n_tgmem);
    std::vector<void *>                           mem_ptr(n_tgmem + 1, nullptr);
    for (int i = 0; i < n_tgmem; i++) {
        mem[i].reset(new unsigned char[tgmem_size[i] + 16]);
        mem_ptr[i] = mem[i].get();
    }

    // fresh barriers and slots before each threadgroup (lanes that returned early dropped out)
    auto reset = [&]() noexcept {
        for (int s = 0; s < n_sg; s++) {
            tg.sg[s].bar.reset();
            tg.sg[s].bar.emplace(std::min(32, n_threads - 32 * s));
            memset(tg.sg[s].gen, 0xff, sizeof(tg.sg[s].gen));
        }
        tg.bar.reset();
        tg.bar.emplace(n_threads);
        for (int i = 0; i < n_tgmem; i++) memset(mem[i].get(), 0xff, tgmem_size[i] + 16);
    };
    reset();
    std::barrier end_of_threadgroup(n_threads, reset);

    auto body = [&](int tiitg) {
        coords c;
        c.tpitg = {tiitg % ntg.x, (tiitg / ntg.x) % ntg.y, tiitg / (ntg.x * ntg.y)};
        c.ntg   = ntg;
        c.ntgpg = ntgpg;
        c.tiitg = tiitg;
        c.nsg   = n_sg;
        lane_state lane{&tg, tiitg / 32, tiitg % 32, 0};
        t_lane = &lane;
        for (uint z = 0; z < ntgpg.z; z++) {
            for (uint y = 0; y < ntgpg.y; y++) {
                for (uint x = 0; x < ntgpg.x; x++) {
                    c.tgpig    = {x, y, z};
                    lane.calls = 0;
                    k.run(k.fn, c, slots, mem_ptr.data());
                    // this thread is done with the threadgroup: the others stop waiting for it
                    tg.sg[lane.sg].bar->arrive_and_drop();
                    tg.bar->arrive_and_drop();
                    end_of_threadgroup.arrive_and_wait();
                }
            }
        }
        t_lane = nullptr;
    };

    std::vector<std::thread> threads;
    threads.reserve(n_threads);
    for (int i = 0; i < n_threads; i++) threads.emplace_back(body, i);
    for (auto & t : threads) t.join();
}

}  // namespace msl

// ggml_library.cpp - Heed's own ggml functions, or another ggml-base's after a layout check.
#include "ggml_library.hpp"

#include <dlfcn.h>
#include <link.h>

#include <cstring>

#include "error.hpp"
#include "ggml-backend.h"

namespace heed {
namespace {

// What the layout check calls in the other library.
struct probe_functions {
    size_t (*tensor_overhead)();
    ggml_context *(*init)(ggml_init_params);
    void (*free)(ggml_context *);
    ggml_tensor *(*new_tensor_3d)(ggml_context *, ggml_type, int64_t, int64_t, int64_t);
    ggml_tensor *(*set_name)(ggml_tensor *, const char *);
    const char *(*get_name)(const ggml_tensor *);
    ggml_tensor *(*add)(ggml_context *, ggml_tensor *, ggml_tensor *);
    const char *(*op_name)(ggml_op);
    ggml_backend_buffer_t (*cpu_buffer_from_ptr)(void *, size_t);
    ggml_status (*tensor_alloc)(ggml_backend_buffer_t, ggml_tensor *, void *);
    void (*buffer_free)(ggml_backend_buffer_t);
};

// A symbol defined in the library of `handle` itself: dlsym also searches the library's
// dependencies, and a library that merely links some ggml is not that ggml.
template <typename F>
void find(void *handle, const char *symbol, F *function, const char **missing) {
    void *address = dlsym(handle, symbol);
    link_map *library = nullptr;
    Dl_info defined{};
    bool own = address != nullptr && dlinfo(handle, RTLD_DI_LINKMAP, &library) == 0 && dladdr(address, &defined) != 0 &&
               defined.dli_fname != nullptr && std::strcmp(defined.dli_fname, library->l_name) == 0;
    *function = own ? reinterpret_cast<F>(address) : nullptr;
    if (*function == nullptr && *missing == nullptr) *missing = symbol;
}

// Builds tensors with the other ggml and reads them through libheed's ggml_tensor declaration:
// every field the capture reads (type, ne, nb, op, name) and those ggml itself uses to copy
// data out (buffer, data) must sit where libheed expects them. Returns the first field that
// does not, or null.
const char *layout_mismatch(const probe_functions &f, const ggml_library &library) {
    if (f.tensor_overhead() != ggml_tensor_overhead()) return "sizeof(ggml_tensor)";
    if (std::strcmp(f.op_name(GGML_OP_ADD), "ADD") != 0 || std::strcmp(f.op_name(GGML_OP_ROPE), "ROPE") != 0)
        return "enum ggml_op";
    ggml_init_params params{8 * ggml_tensor_overhead(), nullptr, true};
    ggml_context *ctx = f.init(params);
    if (ctx == nullptr) return "ggml_init";
    const char *mismatch = nullptr;
    alignas(64) float storage[3 * 5 * 7];  // ggml buffers start on a 32-byte boundary
    ggml_tensor *a = f.new_tensor_3d(ctx, GGML_TYPE_F32, 3, 5, 7);
    const int64_t ne[GGML_MAX_DIMS] = {3, 5, 7, 1};
    const size_t nb[GGML_MAX_DIMS] = {4, 12, 60, 420};
    if (a->type != GGML_TYPE_F32) mismatch = "type";
    else if (std::memcmp(a->ne, ne, sizeof ne) != 0) mismatch = "ne";
    else if (std::memcmp(a->nb, nb, sizeof nb) != 0) mismatch = "nb";
    if (mismatch == nullptr) {
        f.set_name(a, "Kcur-7");
        if (std::strcmp(a->name, "Kcur-7") != 0 || f.get_name(a) != a->name) mismatch = "name";
    }
    if (mismatch == nullptr) {
        ggml_tensor *sum = f.add(ctx, a, a);
        if (sum->op != GGML_OP_ADD || sum->src[0] != a) mismatch = "op";
    }
    if (mismatch == nullptr) {
        ggml_backend_buffer_t buffer = f.cpu_buffer_from_ptr(storage, sizeof storage);
        if (buffer == nullptr || f.tensor_alloc(buffer, a, storage) != GGML_STATUS_SUCCESS) {
            mismatch = "ggml_backend_tensor_alloc";
        } else if (a->buffer != buffer) {
            mismatch = "buffer";
        } else if (a->data != storage) {
            mismatch = "data";
        } else {
            for (int i = 0; i < 3 * 5 * 7; ++i) storage[i] = static_cast<float>(i);
            float row[3] = {};
            library.tensor_get(a, row, 12 * sizeof(float), sizeof row);
            if (!library.is_contiguous(a) || row[0] != 12.0f || row[2] != 14.0f) mismatch = "ggml_backend_tensor_get";
        }
        if (buffer != nullptr) f.buffer_free(buffer);
    }
    f.free(ctx);
    return mismatch;
}

}  // namespace

ggml_library own_ggml_library() { return {&ggml_is_contiguous, &ggml_backend_tensor_get, nullptr}; }

heed_status open_ggml_library(const char *name, ggml_library *library) {
    if (name == nullptr || *name == '\0' || library == nullptr)
        return fail(HEED_ERR_INVALID_ARGUMENT, "open_ggml_library: name and library must not be null or empty");
    void *handle = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
    if (handle == nullptr)
        return fail(HEED_ERR_NOT_FOUND, "no ggml library named '%s' is loaded in this process (load the model with it first)", name);
    ggml_library found{nullptr, nullptr, handle};
    probe_functions f{};
    const char *missing = nullptr;
    find(handle, "ggml_is_contiguous", &found.is_contiguous, &missing);
    find(handle, "ggml_backend_tensor_get", &found.tensor_get, &missing);
    find(handle, "ggml_tensor_overhead", &f.tensor_overhead, &missing);
    find(handle, "ggml_init", &f.init, &missing);
    find(handle, "ggml_free", &f.free, &missing);
    find(handle, "ggml_new_tensor_3d", &f.new_tensor_3d, &missing);
    find(handle, "ggml_set_name", &f.set_name, &missing);
    find(handle, "ggml_get_name", &f.get_name, &missing);
    find(handle, "ggml_add", &f.add, &missing);
    find(handle, "ggml_op_name", &f.op_name, &missing);
    find(handle, "ggml_backend_cpu_buffer_from_ptr", &f.cpu_buffer_from_ptr, &missing);
    find(handle, "ggml_backend_tensor_alloc", &f.tensor_alloc, &missing);
    find(handle, "ggml_backend_buffer_free", &f.buffer_free, &missing);
    if (missing != nullptr) {
        dlclose(handle);
        return fail(HEED_ERR_UNSUPPORTED, "'%s' is not a ggml-base library: it has no symbol %s", name, missing);
    }
    if (const char *field = layout_mismatch(f, found)) {
        dlclose(handle);
        return fail(HEED_ERR_UNSUPPORTED,
                    "the ggml in '%s' is not the one libheed was built for: its ggml_tensor differs at '%s'. "
                    "Use a llama.cpp build whose ggml_tensor layout matches (see ggml.h), or Heed's own engine",
                    name, field);
    }
    *library = found;
    return ok();
}

void close_ggml_library(ggml_library *library) {
    if (library->handle != nullptr) dlclose(library->handle);
    *library = own_ggml_library();
}

}  // namespace heed

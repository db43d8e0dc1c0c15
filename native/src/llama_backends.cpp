// llama_backends.cpp - Heed's renamed ggml backend modules, chosen and loaded by path.
#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <string>

#include "error.hpp"
#include "ggml-backend.h"
#include "heed/llama_backends.h"

namespace {

struct module_choice {
    std::string path;
    int score = 0;  // ggml_backend_score of the chosen variant; 0 for a plain module
};

}  // namespace

extern "C" heed_status heed_load_backend_modules(const char *directory, int32_t *loaded) {
    if (directory == nullptr || loaded == nullptr)
        return heed::fail(HEED_ERR_INVALID_ARGUMENT, "heed_load_backend_modules: directory and loaded must not be null");
    *loaded = 0;
    HEED_GUARD_BEGIN
    namespace fs = std::filesystem;
    const std::string prefix = "libheed-ggml-", suffix = ".so", base = "libheed-ggml-base.so";
    std::map<std::string, module_choice> chosen;  // by backend name: "cpu", "cuda", ...
    std::error_code error;
    for (fs::directory_iterator it(directory, error), end; !error && it != end; it.increment(error)) {
        const std::string name = it->path().filename().string();
        if (name == base || name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        const std::string variant = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
        const std::string backend = variant.substr(0, variant.find('-'));
        void *module = dlopen(it->path().c_str(), RTLD_NOW | RTLD_LOCAL);
        if (module == nullptr) continue;
        module_choice &choice = chosen[backend];
        if (auto score = reinterpret_cast<int (*)()>(dlsym(module, "ggml_backend_score"))) {
            int value = score();
            if (value > choice.score) choice = {it->path().string(), value};
        } else if (variant == backend && choice.score == 0) {
            choice.path = it->path().string();
        }
        dlclose(module);
    }
    if (error) return heed::fail(HEED_ERR_NOT_FOUND, "cannot list the backend modules in '%s': %s", directory, error.message().c_str());
    for (int cpu_pass = 0; cpu_pass < 2; ++cpu_pass) {
        for (const auto &[backend, choice] : chosen) {
            if ((backend == "cpu") == (cpu_pass == 1) && !choice.path.empty() && ggml_backend_load(choice.path.c_str()) != nullptr)
                ++*loaded;
        }
    }
    return heed::ok();
    HEED_GUARD_END
}

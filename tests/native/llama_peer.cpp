// llama_peer.cpp - llama.cpp's own C API on a GGUF, as an independent peer of the C# binding.
//
//   heed_llama_peer MODEL.gguf PROMPT N_PREDICT [N_GPU_LAYERS]
//
// Prints one JSON line: the prompt's tokens (with BOS as the vocabulary says) and the
// greedy continuation's token ids. The .NET tests run it and compare with their own result.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "heed/llama_backends.h"
#include "llama.h"

namespace {

void quiet_log(ggml_log_level, const char *, void *) {}

std::string executable_dir() {
    char buffer[4096];
    ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
    if (n <= 0) return ".";
    std::string path(buffer, static_cast<size_t>(n));
    return path.substr(0, path.find_last_of('/'));
}

void print_ids(const char *name, const std::vector<llama_token> &ids) {
    std::printf("\"%s\":[", name);
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? ",%d" : "%d", ids[i]);
    std::printf("]");
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT N_PREDICT [N_GPU_LAYERS]\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1];
    const std::string prompt = argv[2];
    const int n_predict = std::atoi(argv[3]);
    const int n_gpu_layers = argc > 4 ? std::atoi(argv[4]) : 0;

    llama_log_set(quiet_log, nullptr);
    const char *backend_dir = std::getenv("HEED_BACKEND_DIR");
    int32_t backends = 0;  // Heed's modules are libheed-ggml-*.so, which ggml_backend_load_all does not look for
    if (heed_load_backend_modules(backend_dir ? backend_dir : executable_dir().c_str(), &backends) != HEED_OK || backends == 0) {
        std::fprintf(stderr, "no ggml backend module found\n");
        return 1;
    }
    llama_backend_init();

    llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = n_gpu_layers;
    llama_model *model = llama_model_load_from_file(model_path, mparams);
    if (!model) {
        std::fprintf(stderr, "failed to load %s\n", model_path);
        return 1;
    }
    const llama_vocab *vocab = llama_model_get_vocab(model);

    std::vector<llama_token> tokens(prompt.size() + 8);
    int n = llama_tokenize(vocab, prompt.c_str(), static_cast<int>(prompt.size()), tokens.data(),
                           static_cast<int>(tokens.size()), true, false);
    if (n < 0) {
        std::fprintf(stderr, "tokenize failed\n");
        return 1;
    }
    tokens.resize(static_cast<size_t>(n));

    llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = static_cast<uint32_t>(tokens.size() + n_predict + 8);
    cparams.n_batch = cparams.n_ctx;
    cparams.n_threads = cparams.n_threads_batch = 2;
    llama_context *ctx = llama_init_from_model(model, cparams);
    if (!ctx) {
        std::fprintf(stderr, "failed to create a context\n");
        return 1;
    }

    llama_sampler *sampler = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(sampler, llama_sampler_init_greedy());

    std::vector<llama_token> generated;
    std::vector<llama_token> pending = tokens;
    for (int i = 0; i < n_predict; ++i) {
        llama_batch batch = llama_batch_get_one(pending.data(), static_cast<int32_t>(pending.size()));
        if (llama_decode(ctx, batch) != 0) {
            std::fprintf(stderr, "decode failed\n");
            return 1;
        }
        llama_token next = llama_sampler_sample(sampler, ctx, -1);
        generated.push_back(next);
        if (llama_vocab_is_eog(vocab, next)) break;
        pending.assign(1, next);
    }

    std::printf("{");
    print_ids("prompt", tokens);
    std::printf(",");
    print_ids("continuation", generated);
    std::printf("}\n");

    llama_sampler_free(sampler);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

// Small verification tool against the pinned llama.cpp C API (include/llama.h).
// Build (see models/train/device_*.sh):
//   g++ -O2 -std=c++17 heed_llama.cpp -I<llama>/include -I<llama>/ggml/include -L<build>/bin -lllama -lggml -lggml-base
// Modes:
//   tokenize MODEL TEXTFILE OUT.json        ids of the raw file bytes (add_special=false, parse_special=false)
//   logits   MODEL IDSFILE OUT.bin          IDSFILE: whitespace-separated token ids; writes float32 logits of
//                                           every position (n_tokens x n_vocab) to OUT.bin
//   greedy   MODEL PROMPTS OUT.txt N        PROMPTS: records separated by \x1e; each prompt is tokenized with BOS,
//                                           then N tokens are generated greedily; one generation per output line
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static std::string slurp(const char * p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s; s << f.rdbuf();
    return s.str();
}

static std::vector<llama_token> tok(const llama_vocab * v, const std::string & s, bool add_special) {
    int n = -llama_tokenize(v, s.data(), (int32_t) s.size(), nullptr, 0, add_special, false);
    std::vector<llama_token> out(n);
    int m = llama_tokenize(v, s.data(), (int32_t) s.size(), out.data(), n, add_special, false);
    if (m < 0) { fprintf(stderr, "tokenize failed\n"); exit(1); }
    out.resize(m);
    return out;
}

static llama_context * make_ctx(llama_model * model, int n_ctx, bool all_logits) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx; cp.n_batch = n_ctx; cp.n_ubatch = n_ctx;
    cp.n_threads = 8; cp.n_threads_batch = 8;
    (void) all_logits;
    return llama_init_from_model(model, cp);
}

int main(int argc, char ** argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s tokenize|logits|greedy MODEL IN OUT [N]\n", argv[0]); return 2; }
    std::string mode = argv[1];
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[2], mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    if (mode == "tokenize") {
        auto ids = tok(vocab, slurp(argv[3]), false);
        FILE * f = fopen(argv[4], "w");
        fprintf(f, "[");
        for (size_t i = 0; i < ids.size(); i++) fprintf(f, i ? ",%d" : "%d", ids[i]);
        fprintf(f, "]\n");
        fclose(f);
        printf("tokenized %zu tokens\n", ids.size());
    } else if (mode == "logits") {
        std::vector<llama_token> ids;
        std::stringstream ss(slurp(argv[3]));
        int x; while (ss >> x) ids.push_back(x);
        llama_context * ctx = make_ctx(model, 2048, true);
        llama_batch b = llama_batch_init((int) ids.size(), 0, 1);
        for (size_t i = 0; i < ids.size(); i++) {
            b.token[i] = ids[i]; b.pos[i] = (llama_pos) i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
        }
        b.n_tokens = (int) ids.size();
        if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
        FILE * f = fopen(argv[4], "wb");
        for (size_t i = 0; i < ids.size(); i++) fwrite(llama_get_logits_ith(ctx, (int) i), sizeof(float), n_vocab, f);
        fclose(f);
        printf("wrote logits %zu x %d\n", ids.size(), n_vocab);
        llama_batch_free(b);
        llama_free(ctx);
    } else if (mode == "greedy") {
        int n_gen = argc > 5 ? atoi(argv[5]) : 12;
        std::string all = slurp(argv[3]);
        std::vector<std::string> prompts;
        size_t s = 0;
        while (s <= all.size()) {
            size_t e = all.find('\x1e', s);
            if (e == std::string::npos) e = all.size();
            if (e > s) prompts.push_back(all.substr(s, e - s));
            s = e + 1;
        }
        llama_context * ctx = make_ctx(model, 2048, false);
        FILE * f = fopen(argv[4], "w");
        for (auto & p : prompts) {
            llama_memory_clear(llama_get_memory(ctx), true);
            auto ids = tok(vocab, p, true);
            if ((int) ids.size() + n_gen > 2048) { fprintf(f, "<too long: %zu>\n", ids.size()); continue; }
            if (llama_decode(ctx, llama_batch_get_one(ids.data(), (int) ids.size()))) { fprintf(stderr, "decode failed\n"); return 1; }
            std::string out;
            for (int i = 0; i < n_gen; i++) {
                const float * lg = llama_get_logits_ith(ctx, -1);
                llama_token best = 0;
                for (int t = 1; t < n_vocab; t++) if (lg[t] > lg[best]) best = t;
                if (llama_vocab_is_eog(vocab, best)) break;
                char buf[256];
                int n = llama_token_to_piece(vocab, best, buf, sizeof(buf), 0, false);
                if (n > 0) out.append(buf, n);
                if (llama_decode(ctx, llama_batch_get_one(&best, 1))) { fprintf(stderr, "decode failed\n"); return 1; }
            }
            for (auto & c : out) if (c == '\n') c = ' ';
            fprintf(f, "%s\n", out.c_str());
        }
        fclose(f);
        printf("greedy: %zu prompts\n", prompts.size());
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}

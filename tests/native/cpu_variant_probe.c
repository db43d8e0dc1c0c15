/* Which of ggml's CPU variants loads on this processor: ggml's own "loaded CPU backend from ..."
 * line. Run under qemu-x86_64 -cpu MODEL by ./build.sh qemu to show the variant each CPU level gets.
 *   heed_cpu_variant_probe BACKEND_DIR */
#include <stdio.h>
#include <string.h>

#include "ggml-backend.h"
#include "heed/llama_backends.h"

static void print_loader_lines(enum ggml_log_level level, const char *text, void *user_data) {
    (void)user_data;
    if (level >= GGML_LOG_LEVEL_WARN || strstr(text, "backend from") != NULL) fputs(text, stdout);
}

int main(int argc, char **argv) {
    ggml_log_set(print_loader_lines, NULL);
    /* Heed's modules carry names of their own (libheed-ggml-cpu-*.so); libheed loads the best by path. */
    int32_t loaded = 0;
    if (argc < 2 || heed_load_backend_modules(argv[1], &loaded) != HEED_OK) {
        fprintf(stderr, "usage: heed_cpu_variant_probe BACKEND_DIR (the folder of libheed-ggml-cpu*.so)\n");
        return 2;
    }
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (cpu == NULL) {
        fprintf(stderr, "no CPU backend loaded: no variant fits this processor\n");
        return 1;
    }
    printf("CPU device: %s\n", ggml_backend_dev_description(cpu));
    return 0;
}

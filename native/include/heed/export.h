/* heed/export.h - symbol visibility and the C linkage guard shared by every heed header. */
#ifndef HEED_EXPORT_H
#define HEED_EXPORT_H

#if defined(_WIN32)
#  if defined(HEED_BUILD)
#    define HEED_API __declspec(dllexport)
#  else
#    define HEED_API __declspec(dllimport)
#  endif
#else
#  define HEED_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#  define HEED_EXTERN_C_BEGIN extern "C" {
#  define HEED_EXTERN_C_END }
#else
#  define HEED_EXTERN_C_BEGIN
#  define HEED_EXTERN_C_END
#endif

#endif /* HEED_EXPORT_H */

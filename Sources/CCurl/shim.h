#ifndef FERRY_CCURL_SHIM_H
#define FERRY_CCURL_SHIM_H
#include <curl/curl.h>

/* Swift cannot call C-variadic functions: curl_easy_setopt and curl_easy_getinfo are wrapped here, one
   function per argument type FerryClient passes. Everything else is called from Swift directly. */

typedef size_t (*ferry_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);
typedef int (*ferry_curl_progress_callback)(void *context, curl_off_t download_total, curl_off_t download_now,
                                            curl_off_t upload_total, curl_off_t upload_now);

static inline CURLcode ferry_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ferry_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/* Strings are copied by libcurl (CURLOPT_URL, CURLOPT_CUSTOMREQUEST, ...). */
static inline CURLcode ferry_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

/* Context pointers and header lists: they must outlive the transfer. */
static inline CURLcode ferry_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ferry_curl_set_data_callback(CURL *handle, CURLoption option, ferry_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

static inline CURLcode ferry_curl_set_progress_callback(CURL *handle, ferry_curl_progress_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}

static inline CURLcode ferry_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif

#ifndef FERRY_CARCHIVE_SHIM_H
#define FERRY_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

/* AE_IFMT and friends are cast macros that Swift cannot import. */
static inline unsigned int ferry_ae_ifmt(void) { return AE_IFMT; }
static inline unsigned int ferry_ae_ifreg(void) { return AE_IFREG; }
static inline unsigned int ferry_ae_ifdir(void) { return AE_IFDIR; }
static inline unsigned int ferry_ae_iflnk(void) { return AE_IFLNK; }
static inline unsigned int ferry_ae_ifchr(void) { return AE_IFCHR; }
static inline unsigned int ferry_ae_ifblk(void) { return AE_IFBLK; }
static inline unsigned int ferry_ae_ififo(void) { return AE_IFIFO; }
static inline unsigned int ferry_ae_ifsock(void) { return AE_IFSOCK; }
#endif

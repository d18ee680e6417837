#ifndef FERRY_CPOSTGRES_SHIM_H
#define FERRY_CPOSTGRES_SHIM_H
/* libpq, PostgreSQL's own client library: wrapped once by FerryCatalog's PostgresConnection. */
#include <libpq-fe.h>
#endif

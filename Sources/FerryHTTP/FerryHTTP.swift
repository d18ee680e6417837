// FerryHTTP: the libmicrohttpd wrapper. Work in progress.

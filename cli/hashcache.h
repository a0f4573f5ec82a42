/* hashcache.h — model-file SHA-256 hashes, remembered across runs (as AUTOMATIC1111's
 * cache.json does), so `sdc generate` does not read a 2 GB checkpoint again just to write
 * "Model hash" into the PNG.
 *
 * The cache is one text file, $XDG_CACHE_HOME/sdc/model-hashes.tsv (or
 * $HOME/.cache/sdc/model-hashes.tsv when XDG_CACHE_HOME is unset or not absolute), one entry a
 * line: "SHA256-HEX \t SIZE \t MTIME-NS \t INODE \t ABSOLUTE-PATH". An entry is used only when the
 * file's absolute path, size, mtime (ns) and inode all match; a file rewritten with the same four
 * would keep its old hash, which is accepted (A1111 keys on mtime alone). Lines that do not parse
 * are ignored; the file is rewritten whole (temp file + rename) holding the newest
 * SDC_HASHCACHE_MAX_ENTRIES entries. The cache is best effort: when it cannot be read or written
 * the hash is computed and returned as if there were none. */
#ifndef SDC_HASHCACHE_H
#define SDC_HASHCACHE_H

/* Entries kept: far more checkpoints than anyone switches between, and a file of tens of KB. */
#define SDC_HASHCACHE_MAX_ENTRIES 256

/* Lower-case hex SHA-256 of the file at path into hex (65 bytes), from the cache when it holds
 * this file, else read whole, hashed, and remembered. Returns 0, or -1 (errno set) when the file
 * cannot be opened or read; a cache that cannot be used never makes it fail. */
int sdc_model_hash(const char *path, char hex[65]);

#endif

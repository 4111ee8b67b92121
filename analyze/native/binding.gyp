{
  "variables": {
    # Directory of the libduckdb.so that @duckdb/node-bindings loads (passed by build.mjs):
    # the addon links it by SONAME, so at run time it binds to the copy already loaded.
    "duckdb_lib_dir%": ""
  },
  "targets": [
    {
      "target_name": "retis_json",
      "sources": ["retis_json.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-std=gnu11", "-Werror=implicit-function-declaration"],
      "libraries": ["-L<(duckdb_lib_dir)", "-lduckdb", "-Wl,-rpath,<(duckdb_lib_dir)"]
    }
  ]
}

{
  "targets": [
    {
      "target_name": "retis_bpf",
      "sources": ["retis_bpf.c", "pcap_glue.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-std=gnu11"],
      "libraries": ["-lbpf", "-lpcap"]
    }
  ]
}

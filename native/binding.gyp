{
  "targets": [
    {
      "target_name": "mmapkit_native",
      "sources": ["<!@(ls -1 src/*.cc)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../kmod/uapi"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}

# cmake -DIN=<.proto> -DOUT=<copy> -P make_lite.cmake
# The copy says `option optimize_for = LITE_RUNTIME;`: its C++ code then needs only
# libprotobuf-lite (no descriptors, reflection or text format in the binary). The messages and
# their wire format are the same.
file(READ ${IN} text)
string(REGEX REPLACE "\n(package [^;]*;)" "\n\\1\noption optimize_for = LITE_RUNTIME;" text
  "${text}")
file(WRITE ${OUT} "${text}")

# cmake -DIN=<containerd .proto> -DOUT=<copy> -P strip_gogo.cmake
# containerd's protos as Debian ships them import gogoproto weakly and annotate fields with
# gogo/fieldpath options, which protoc 3.21 refuses without those files. The options only steer
# Go code generation; without them the messages and their wire format are the same.
file(READ ${IN} text)
string(REGEX REPLACE "import weak \"[^\"]*\";\n" "" text "${text}")
string(REGEX REPLACE "import \"[^\"]*gogo.proto\";\n" "" text
  "${text}")
string(REGEX REPLACE "[ \t]*option \\((gogoproto|containerd\\.plugin)[^;]*;\n" "" text
  "${text}")
string(REGEX REPLACE " *\\[\\((gogoproto|containerd\\.plugin)[^]]*\\]" "" text "${text}")
file(WRITE ${OUT} "${text}")

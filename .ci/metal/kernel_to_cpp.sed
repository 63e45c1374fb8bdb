# Rewrites an MSL kernel file into C++ for msl_rt.h (see there). Only the constructs C++ cannot
# express are touched; a construct this script does not know stays as it is and g++ rejects it, so
# a kernel change that needs more emulation shows up as a build error rather than a wrong result.

# constant T name [[function_constant(index)]];  ->  a global the emulator sets per dispatch
s/^[[:space:]]*constant[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\[\[function_constant\((.*)\)\]\][[:space:]]*;/MSL_FUNCTION_CONSTANT(\1, \2, \3);/

# template [[host_name("name")]] kernel type fn<args>;  ->  registration under the host name
s/^[[:space:]]*template[[:space:]]*\[\[host_name\("([^"]+)"\)\]\][[:space:]]*kernel[[:space:]]+[A-Za-z_][A-Za-z0-9_]*[[:space:]]+(.*);/MSL_HOST_NAME("\1", \2);/

# threadgroup T * name [[threadgroup(N)]]  ->  shared memory N of the threadgroup
s/threadgroup[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\*[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\[\[threadgroup\(([0-9]+)\)\]\]/::msl::tgmem<\1, \3> \2/g

# T name [[builtin]]  ->  a parameter that tells the invoker which builtin it is
s/([A-Za-z_][A-Za-z0-9_]*)[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\[\[([a-z_]+)\]\]/::msl::builtin<::msl::attr::\3, \1> \2/g

// fake_nvrtc.cpp: NVRTC's program calls, on the host (see README). It
// checks the source and options runtime/cuda passes, and returns
// placeholder PTX.
#include <nvrtc.h>

#include <string>

#include "common.h"

namespace {

struct Program {
	std::string src, log;
	bool compiled = false;
};

const char ptx[] = "// fakecuda: placeholder PTX\n";

} // namespace

extern "C" {

nvrtcResult nvrtcVersion(int *major, int *minor) {
	*major = 11;
	*minor = 8;
	return NVRTC_SUCCESS;
}

const char *nvrtcGetErrorString(nvrtcResult r) { return r == NVRTC_SUCCESS ? "NVRTC_SUCCESS" : "NVRTC_ERROR (fake)"; }

nvrtcResult nvrtcCreateProgram(nvrtcProgram *p, const char *src, const char *name, int n, const char *const *headers,
		const char *const *names) {
	(void)name;
	(void)headers;
	(void)names;
	if (src == nullptr || n != 0) return NVRTC_ERROR_INVALID_INPUT;
	Program *prog = new Program;
	prog->src = src;
	*p = reinterpret_cast<nvrtcProgram>(prog);
	return NVRTC_SUCCESS;
}

nvrtcResult nvrtcDestroyProgram(nvrtcProgram *p) {
	delete reinterpret_cast<Program *>(*p);
	*p = nullptr;
	return NVRTC_SUCCESS;
}

nvrtcResult nvrtcCompileProgram(nvrtcProgram p, int n, const char *const *opts) {
	Program *prog = reinterpret_cast<Program *>(p);
	bool arch = false, nofma = false;
	for (int i = 0; i < n; i++) {
		std::string o = opts[i];
		if (o == "--gpu-architecture=compute_90") arch = true;
		if (o == "--fmad=false") nofma = true;
	}
	if (!arch) {
		prog->log = "fakecuda nvrtc: error: invalid value for --gpu-architecture (-arch): only compute_90 is known";
		return NVRTC_ERROR_INVALID_OPTION;
	}
	fake_check(nofma, "NVRTC options without --fmad=false: results would differ from runtime/cpu");
	fake_check(prog->src.find("extern \"C\" __global__ void") != std::string::npos, "NVRTC source has no kernels");
	prog->compiled = true;
	return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetPTXSize(nvrtcProgram p, size_t *size) {
	if (!reinterpret_cast<Program *>(p)->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
	*size = sizeof ptx;
	return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetPTX(nvrtcProgram p, char *out) {
	if (!reinterpret_cast<Program *>(p)->compiled) return NVRTC_ERROR_INVALID_PROGRAM;
	std::memcpy(out, ptx, sizeof ptx);
	return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram p, size_t *size) {
	*size = reinterpret_cast<Program *>(p)->log.size() + 1;
	return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetProgramLog(nvrtcProgram p, char *out) {
	const std::string &log = reinterpret_cast<Program *>(p)->log;
	std::memcpy(out, log.c_str(), log.size() + 1);
	return NVRTC_SUCCESS;
}

} // extern "C"

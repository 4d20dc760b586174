// Command pulumi-language-python is ringzero's Python language host for the Pulumi engine.
//
// Why it exists: upstream's host lives in the Go module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, which the Go module
// proxy reachable from our machines does not serve. This is a small host of our own that
// speaks the same LanguageRuntime gRPC protocol and reuses the sdk/v3 module's Python
// toolchain package (pip/venv, uv, poetry), so it behaves like upstream's for what
// ringzero does: run a Python program, report the resource plugins its packages need,
// install dependencies, and answer `pulumi about`.
//
// Like upstream's host it runs programs through `pulumi-language-python-exec`, which must
// sit next to this binary (build.sh installs it from the sdk/v3 module).
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	execName = "pulumi-language-python-exec"
	// The Python SDK reads the stack configuration from these variables.
	configEnv           = "PULUMI_CONFIG"
	configSecretKeysEnv = "PULUMI_CONFIG_SECRET_KEYS" //nolint:gosec // a variable name, not a secret
	// pulumi-language-python-exec exits with this code after it has shown the user an
	// actionable message; the engine then bails without adding its own error.
	exitUserActionable = 32
)

func main() {
	tracing := flag.String("tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	executor := flag.String("use-executor", "", "Run programs with this executor instead of the one next to this binary")
	// Older engines passed the project's runtime options as flags; keep accepting them.
	root := flag.String("root", "", "Project root directory (legacy flag)")
	virtualenv := flag.String("virtualenv", "", "Virtual environment (legacy flag)")
	tc := flag.String("toolchain", "", "Python toolchain (legacy flag)")
	typechecker := flag.String("typechecker", "", "Type checker (legacy flag)")
	flag.Parse()

	logging.InitLogging(false, 0, false)
	cmdutil.InitTracing("pulumi-language-python", "pulumi-language-python", *tracing)

	execPath := *executor
	if execPath == "" {
		self, err := os.Executable()
		if err != nil {
			cmdutil.Exit(fmt.Errorf("could not determine the language host's own path: %w", err))
		}
		execPath = filepath.Join(filepath.Dir(self), execName)
		if _, err := os.Stat(execPath); err != nil {
			cmdutil.Exit(fmt.Errorf("missing executor %s: %w", execPath, err))
		}
	}

	host := &languageHost{
		exec:    execPath,
		tracing: *tracing,
		legacyOptions: map[string]any{
			"virtualenv":  *virtualenv,
			"toolchain":   *tc,
			"typechecker": *typechecker,
		},
		legacyRoot: *root,
	}
	if args := flag.Args(); len(args) > 0 {
		host.engineAddress = args[0]
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start the language host RPC server: %w", err))
	}
	// The engine reads the port from our first line of output.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

type languageHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	exec          string
	tracing       string
	legacyOptions map[string]any
	legacyRoot    string

	mu            sync.Mutex
	engineAddress string
}

func (h *languageHost) engine() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engineAddress
}

func (h *languageHost) Handshake(
	_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *languageHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// programOptions reads Pulumi.yaml's runtime options (virtualenv, toolchain, typechecker).
func (h *languageHost) programOptions(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, string, error) {
	opts := map[string]any{}
	for k, v := range h.legacyOptions {
		if s, _ := v.(string); s != "" {
			opts[k] = s
		}
	}
	if info.GetOptions() != nil {
		for k, v := range info.GetOptions().AsMap() {
			opts[k] = v
		}
	}
	str := func(key string) (string, error) {
		v, ok := opts[key]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("runtime option %q in Pulumi.yaml must be a string, got %v", key, v)
		}
		return s, nil
	}

	root := info.GetRootDirectory()
	if root == "" {
		root = h.legacyRoot
	}
	programDir := info.GetProgramDirectory()
	if programDir == "" {
		programDir = root
	}
	result := toolchain.PythonOptions{Root: root, ProgramDir: programDir}

	var err error
	if result.Virtualenv, err = str("virtualenv"); err != nil {
		return result, "", err
	}
	tc, err := str("toolchain")
	if err != nil {
		return result, "", err
	}
	switch strings.ToLower(tc) {
	case "":
		result.Toolchain = toolchain.Auto
	case "pip":
		result.Toolchain = toolchain.Pip
	case "poetry":
		result.Toolchain = toolchain.Poetry
	case "uv":
		result.Toolchain = toolchain.Uv
	default:
		return result, "", fmt.Errorf("unsupported toolchain %q in Pulumi.yaml (pip, poetry or uv)", tc)
	}
	checker, err := str("typechecker")
	if err != nil {
		return result, "", err
	}
	switch strings.ToLower(checker) {
	case "", "none":
		checker = ""
	case "mypy", "pyright":
		checker = strings.ToLower(checker)
	default:
		return result, "", fmt.Errorf("unsupported typechecker %q in Pulumi.yaml (mypy or pyright)", checker)
	}
	return result, checker, nil
}

func (h *languageHost) resolve(ctx context.Context, info *pulumirpc.ProgramInfo) (toolchain.Toolchain, toolchain.PythonOptions, string, error) {
	opts, checker, err := h.programOptions(info)
	if err != nil {
		return nil, opts, "", err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, opts, "", err
	}
	if opts.Virtualenv != "" || opts.Toolchain != toolchain.Auto {
		if err := tc.ValidateVenv(ctx); err != nil {
			return nil, opts, "", err
		}
	}
	return tc, opts, checker, nil
}

// pluginScan lists the installed distributions that need a resource plugin: those named
// pulumi-* (upstream's convention) and those that ship a pulumi-plugin.json.
const pluginScan = `
import importlib.metadata as md, json, sys
out = []
seen = set()
for d in md.distributions():
    name = (d.metadata["Name"] or "").lower().replace("_", "-")
    if not name or name in seen:
        continue
    seen.add(name)
    plugin = None
    for f in d.files or []:
        if f.name in ("pulumi-plugin.json", "pulumiplugin.json") and len(f.parts) == 2:
            try:
                plugin = json.loads(f.read_text())
            except Exception as e:
                print("cannot read %s of %s: %s" % (f, name, e), file=sys.stderr)
            break
    if plugin is None and not name.startswith("pulumi-"):
        continue
    out.append({"name": name, "version": d.version, "plugin": plugin})
json.dump(out, sys.stdout)
`

type pluginJSON struct {
	Resource         *bool  `json:"resource"`
	Name             string `json:"name"`
	Version          string `json:"version"`
	Server           string `json:"server"`
	Parameterization *struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Value   string `json:"value"`
	} `json:"parameterization"`
}

type installedPackage struct {
	Name    string      `json:"name"`
	Version string      `json:"version"`
	Plugin  *pluginJSON `json:"plugin"`
}

// Distributions that are named pulumi-* but have no resource plugin.
var withoutPlugin = map[string]bool{"pulumi-policy": true}

func (h *languageHost) requiredPackages(ctx context.Context, info *pulumirpc.ProgramInfo) ([]*pulumirpc.PackageDependency, error) {
	tc, opts, _, err := h.resolve(ctx, info)
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", pluginScan)
	if err != nil {
		return nil, err
	}
	cmd.Dir = opts.ProgramDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing installed Python packages with %s: %w: %s", cmd.Path, err, stderr.String())
	}
	var pkgs []installedPackage
	if err := json.Unmarshal(out, &pkgs); err != nil {
		return nil, fmt.Errorf("parsing the list of installed Python packages: %w", err)
	}

	var deps []*pulumirpc.PackageDependency
	for _, p := range pkgs {
		if withoutPlugin[p.Name] {
			continue
		}
		dep := &pulumirpc.PackageDependency{Kind: "resource", Name: strings.TrimPrefix(p.Name, "pulumi-")}
		ver := ""
		if pj := p.Plugin; pj != nil {
			if pj.Resource != nil && !*pj.Resource {
				continue
			}
			if pj.Name != "" {
				dep.Name = pj.Name
			}
			ver, dep.Server = pj.Version, pj.Server
			if pz := pj.Parameterization; pz != nil {
				value, err := base64.StdEncoding.DecodeString(pz.Value)
				if err != nil {
					return nil, fmt.Errorf("package %s: bad parameterization value: %w", p.Name, err)
				}
				dep.Parameterization = &pulumirpc.PackageParameterization{
					Name: pz.Name, Version: pz.Version, Value: value,
				}
			}
		}
		if ver == "" {
			// A plain release version (0.5.4) maps to the plugin version; pre-releases
			// (3.1.0a1234) do not map back, as upstream's host also gives up on those.
			if _, err := semver.ParseTolerant(p.Version); err != nil || strings.ContainsAny(p.Version, "abcr+") {
				logging.V(5).Infof("no plugin version for %s %s", p.Name, p.Version)
				continue
			}
			ver = p.Version
		}
		if !strings.HasPrefix(ver, "v") {
			ver = "v" + ver
		}
		dep.Version = ver
		deps = append(deps, dep)
	}
	return deps, nil
}

func (h *languageHost) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	deps, err := h.requiredPackages(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetRequiredPackagesResponse{Packages: deps}, nil
}

func (h *languageHost) GetRequiredPlugins(
	ctx context.Context, req *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	deps, err := h.requiredPackages(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	var plugins []*pulumirpc.PluginDependency
	for _, d := range deps {
		if d.Parameterization != nil {
			continue
		}
		plugins = append(plugins, &pulumirpc.PluginDependency{
			Name: d.Name, Kind: d.Kind, Version: d.Version, Server: d.Server,
		})
	}
	return &pulumirpc.GetRequiredPluginsResponse{Plugins: plugins}, nil
}

func (h *languageHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	if info == nil {
		info = &pulumirpc.ProgramInfo{RootDirectory: req.GetPwd(), ProgramDirectory: req.GetPwd()}
	}
	tc, opts, checker, err := h.resolve(ctx, info)
	if err != nil {
		return nil, err
	}

	if checker != "" {
		check, err := tc.ModuleCommand(ctx, checker, opts.ProgramDir)
		if err != nil {
			return nil, err
		}
		check.Dir = opts.ProgramDir
		check.Stdout, check.Stderr = os.Stdout, os.Stderr
		if err := check.Run(); err != nil {
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("%s type checking failed: %v", checker, err)}, nil
		}
	}

	args := []string{h.exec}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engine())
	add("project", req.GetProject())
	add("root_directory", opts.Root)
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", fmt.Sprint(req.GetDryRun()))
	add("parallel", fmt.Sprint(req.GetParallel()))
	add("tracing", h.tracing)
	add("organization", req.GetOrganization())
	program := req.GetProgram() //nolint:staticcheck // still the entry point the engine sends
	if program == "" {
		program = info.GetEntryPoint()
	}
	if program == "" {
		program = "."
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	if len(req.GetConfig()) > 0 {
		b, err := json.Marshal(req.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("serialising the stack configuration: %w", err)
		}
		env = append(env, configEnv+"="+string(b))
	}
	if len(req.GetConfigSecretKeys()) > 0 {
		b, err := json.Marshal(req.GetConfigSecretKeys())
		if err != nil {
			return nil, fmt.Errorf("serialising the secret configuration keys: %w", err)
		}
		env = append(env, configSecretKeysEnv+"="+string(b))
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	logging.V(5).Infof("language host launching %s %s", cmd.Path, strings.Join(args, " "))

	if err := cmd.Run(); err != nil {
		// Flush our streams so that the engine sees all the program's output before the error.
		_ = os.Stdout.Sync()
		_ = os.Stderr.Sync()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == exitUserActionable {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			if exitErr.ExitCode() > 0 {
				return &pulumirpc.RunResponse{
					Error: fmt.Sprintf("program exited with non-zero exit code: %d", exitErr.ExitCode()),
				}, nil
			}
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("program exited unexpectedly: %v", exitErr)}, nil
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("problem executing program (could not run %s): %v", h.exec, err),
		}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// streamWriter forwards an install's output to the engine.
type streamWriter struct {
	server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse]
	stderr bool
	mu     *sync.Mutex
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := append([]byte(nil), p...)
	resp := &pulumirpc.InstallDependenciesResponse{Stdout: b}
	if w.stderr {
		resp = &pulumirpc.InstallDependenciesResponse{Stderr: b}
	}
	if err := w.server.Send(resp); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *languageHost) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest,
	server grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	ctx := server.Context()
	info := req.GetInfo()
	if info == nil {
		info = &pulumirpc.ProgramInfo{RootDirectory: req.GetDirectory(), ProgramDirectory: req.GetDirectory()}
	}
	opts, _, err := h.programOptions(info)
	if err != nil {
		return err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var stdout, stderr io.Writer = streamWriter{server, false, &mu}, streamWriter{server, true, &mu}
	if err := tc.EnsureVenv(ctx, opts.ProgramDir, req.GetUseLanguageVersionTools(), true, stdout, stderr); err != nil {
		return err
	}
	return tc.InstallDependencies(ctx, opts.ProgramDir, req.GetUseLanguageVersionTools(), true, stdout, stderr)
}

func (h *languageHost) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *languageHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, _, _, err := h.resolve(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	about, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: about.PythonExecutable,
		Version:    about.PythonVersion.String(),
		Metadata:   map[string]string{"host": "ringzero pulumi-language-python"},
	}, nil
}

func (h *languageHost) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, _, _, err := h.resolve(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	pkgs, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(pkgs))
	for _, p := range pkgs {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

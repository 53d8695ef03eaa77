// Command argocd-health runs an Argo CD resource health check as Argo CD runs one: gopher-lua (the
// interpreter Argo CD embeds) with only the base and table libraries and an os table that holds time and
// date, the resource as the global obj, and one second at most. It reads the resource as JSON on
// standard input and prints the table the script returns ({status, message}) as JSON.
//
// Usage: argocd-health SCRIPT.lua < resource.json
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT.lua < resource.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	var obj any
	if err := json.NewDecoder(os.Stdin).Decode(&obj); err != nil {
		fail(fmt.Errorf("the resource is not JSON: %w", err))
	}
	result, err := run(string(script), obj)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// run evaluates the script with Argo CD's restrictions and returns what it returned.
func run(script string, obj any) (map[string]any, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	// Of os, only the clock: no files, no environment, no processes.
	osTable := l.NewTable()
	full := l.NewTable()
	l.Push(l.NewFunction(lua.OpenOs))
	l.Push(lua.LString(lua.OsLibName))
	l.Call(1, 1)
	if t, ok := l.Get(-1).(*lua.LTable); ok {
		full = t
	}
	l.Pop(1)
	osTable.RawSetString("time", full.RawGetString("time"))
	osTable.RawSetString("date", full.RawGetString("date"))
	l.SetGlobal("os", osTable)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	result, _ := fromLua(ret).(map[string]any)
	return result, nil
}

func toLua(l *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := l.NewTable()
		for _, e := range x {
			t.Append(toLua(l, e))
		}
		return t
	case map[string]any:
		t := l.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	}
	return lua.LNil
}

func fromLua(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		return string(x)
	case *lua.LTable:
		m := map[string]any{}
		x.ForEach(func(k, e lua.LValue) { m[k.String()] = fromLua(e) })
		return m
	}
	return nil
}

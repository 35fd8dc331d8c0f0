// A third-party client, Debian's Go varlink library (golang-github-varlink-go-dev), against
// snapsetd. Built offline in GOPATH mode by test-go-varlink. Prints one line per check and the
// project's "N passed, N failed" summary.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/varlink/go/varlink"
)

var passed, failed int

func check(name string, err error) {
	if err != nil {
		failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	passed++
	fmt.Printf("ok   %s\n", name)
}

type status struct {
	Version    string `json:"version"`
	UptimeUsec int64  `json:"uptimeUsec"`
	Limits     struct {
		MaxVolumesPerSet int64 `json:"maxVolumesPerSet"`
	} `json:"limits"`
}

type vssError struct {
	Hresult uint32 `json:"hresult"`
	VssName string `json:"vssName"`
	Message string `json:"message"`
}

func main() {
	socket, idlPath := os.Args[1], os.Args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, err := varlink.NewConnection(ctx, "unix:"+socket)
	if err != nil {
		fmt.Printf("cannot connect to %s: %v\n0 passed, 1 failed\n", socket, err)
		os.Exit(1)
	}
	defer conn.Close()

	check("GetInfo names snapsetd and io.snapset.Manager", func() error {
		var vendor, product, version, url string
		var ifaces []string
		if err := conn.GetInfo(ctx, &vendor, &product, &version, &url, &ifaces); err != nil {
			return err
		}
		if product != "snapsetd" {
			return fmt.Errorf("product %q", product)
		}
		for _, i := range ifaces {
			if i == "io.snapset.Manager" {
				return nil
			}
		}
		return fmt.Errorf("interfaces %v", ifaces)
	}())

	check("GetInterfaceDescription is the IDL file of the tree", func() error {
		desc, err := conn.GetInterfaceDescription(ctx, "io.snapset.Manager")
		if err != nil {
			return err
		}
		want, err := os.ReadFile(idlPath)
		if err != nil {
			return err
		}
		if desc != string(want) {
			return fmt.Errorf("description differs from %s", idlPath)
		}
		return nil
	}())

	check("GetStatus decodes into typed fields", func() error {
		var s status
		if err := conn.Call(ctx, "io.snapset.Manager.GetStatus", nil, &s); err != nil {
			return err
		}
		if s.Version == "" || s.Limits.MaxVolumesPerSet < 1 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	}())

	check("a snapset error carries its VSS name and HRESULT", func() error {
		err := conn.Call(ctx, "io.snapset.Manager.GetSnapshot",
			map[string]interface{}{"snapshotId": "not-an-id"}, nil)
		verr, ok := err.(*varlink.Error)
		if !ok {
			return fmt.Errorf("expected a snapset error, got %T %v", err, err)
		}
		var p vssError
		if err := json.Unmarshal(*verr.Parameters.(*json.RawMessage), &p); err != nil {
			return err
		}
		if p.VssName == "" || p.Hresult == 0 || p.Message == "" {
			return fmt.Errorf("error %s without VSS fields: %+v", verr.Name, p)
		}
		return nil
	}())

	check("standard errors reach the library as its own error types", func() error {
		// The library turns the org.varlink.service errors into its own types.
		err := conn.Call(ctx, "io.snapset.Manager.NoSuchMethod", nil, nil)
		e, ok := err.(*varlink.MethodNotFound)
		if !ok {
			return fmt.Errorf("expected *varlink.MethodNotFound, got %T %v", err, err)
		}
		if e.Method != "io.snapset.Manager.NoSuchMethod" {
			return fmt.Errorf("method %q", e.Method)
		}
		return nil
	}())

	check("Monitor streams with more and continues", func() error {
		mon, err := varlink.NewConnection(ctx, "unix:"+socket)
		if err != nil {
			return err
		}
		defer mon.Close()
		receive, err := mon.Send(ctx, "io.snapset.Manager.Monitor", nil, varlink.More)
		if err != nil {
			return err
		}
		var out struct {
			Event struct {
				Type string `json:"type"`
			} `json:"event"`
		}
		flags, err := receive(ctx, &out)
		if err != nil {
			return err
		}
		if flags&varlink.Continues == 0 || out.Event.Type == "" {
			return fmt.Errorf("flags %d event %+v", flags, out)
		}
		return nil
	}())

	check("oneway gets no reply", func() error {
		if _, err := conn.Send(ctx, "io.snapset.Manager.GetStatus", nil, varlink.Oneway); err != nil {
			return err
		}
		var s status
		return conn.Call(ctx, "io.snapset.Manager.GetStatus", nil, &s)
	}())

	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}

package provider

import (
	"context"
	"sync"

	"github.com/hashicorp/terraform-plugin-sdk/v2/diag"
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
)

// connectOnFirstUse makes the provider connect to libvirt when a resource operation first
// needs the connection instead of when the engine configures it.
//
// Why: terraform-provider-libvirt connects in its ConfigureFunc, and Pulumi configures every
// provider of a stack on every preview and update. For a host reached over qemu+ssh that is
// an SSH login to the host on each `pulumi preview` and each no-op `pulumi up`, although a
// no-op (Check and Diff of unchanged resources) never talks to libvirt. With this, a run
// connects only when it creates, reads (refresh), updates or deletes one of that provider's
// resources. A connection that fails then fails that operation, with the provider's own
// message ("failed to connect: …"). Template data sources never used the connection.
func connectOnFirstUse(p *schema.Provider) *schema.Provider {
	configure := p.ConfigureFunc
	if configure == nil {
		return p // nothing to defer (a provider version that configures differently)
	}
	p.ConfigureFunc = nil
	p.ConfigureContextFunc = func(_ context.Context, d *schema.ResourceData) (interface{}, diag.Diagnostics) {
		return &deferredClient{connect: func() (interface{}, error) { return configure(d) }}, nil
	}
	for _, r := range p.ResourcesMap {
		useConnection(r)
	}
	for _, r := range p.DataSourcesMap {
		useConnection(r)
	}
	return p
}

// deferredClient is the provider's meta until first use: the connection, made once.
type deferredClient struct {
	once    sync.Once
	connect func() (interface{}, error)
	client  interface{}
	err     error
}

func (c *deferredClient) get() (interface{}, error) {
	c.once.Do(func() { c.client, c.err = c.connect() })
	return c.client, c.err
}

func connected(meta interface{}) (interface{}, error) {
	if c, ok := meta.(*deferredClient); ok {
		return c.get()
	}
	return meta, nil
}

type contextFunc = func(context.Context, *schema.ResourceData, interface{}) diag.Diagnostics
type plainFunc = func(*schema.ResourceData, interface{}) error

func withConnection(f contextFunc) contextFunc {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, d *schema.ResourceData, meta interface{}) diag.Diagnostics {
		client, err := connected(meta)
		if err != nil {
			return diag.FromErr(err)
		}
		return f(ctx, d, client)
	}
}

func withConnectionPlain(f plainFunc) plainFunc {
	if f == nil {
		return nil
	}
	return func(d *schema.ResourceData, meta interface{}) error {
		client, err := connected(meta)
		if err != nil {
			return err
		}
		return f(d, client)
	}
}

// useConnection wraps every operation of `r` that receives the provider's meta.
func useConnection(r *schema.Resource) {
	r.CreateContext = withConnection(r.CreateContext)
	r.ReadContext = withConnection(r.ReadContext)
	r.UpdateContext = withConnection(r.UpdateContext)
	r.DeleteContext = withConnection(r.DeleteContext)
	r.CreateWithoutTimeout = withConnection(r.CreateWithoutTimeout)
	r.ReadWithoutTimeout = withConnection(r.ReadWithoutTimeout)
	r.UpdateWithoutTimeout = withConnection(r.UpdateWithoutTimeout)
	r.DeleteWithoutTimeout = withConnection(r.DeleteWithoutTimeout)
	// the deprecated forms (some of the provider's resources use them)
	r.Create = withConnectionPlain(r.Create)
	r.Read = withConnectionPlain(r.Read)
	r.Update = withConnectionPlain(r.Update)
	r.Delete = withConnectionPlain(r.Delete)
	if exists := r.Exists; exists != nil {
		r.Exists = func(d *schema.ResourceData, meta interface{}) (bool, error) {
			client, err := connected(meta)
			if err != nil {
				return false, err
			}
			return exists(d, client)
		}
	}
	if cd := r.CustomizeDiff; cd != nil {
		r.CustomizeDiff = func(ctx context.Context, d *schema.ResourceDiff, meta interface{}) error {
			client, err := connected(meta)
			if err != nil {
				return err
			}
			return cd(ctx, d, client)
		}
	}
	if imp := r.Importer; imp != nil && imp.StateContext != nil {
		state := imp.StateContext
		imp.StateContext = func(ctx context.Context, d *schema.ResourceData, meta interface{}) ([]*schema.ResourceData, error) {
			client, err := connected(meta)
			if err != nil {
				return nil, err
			}
			return state(ctx, d, client)
		}
	}
}

import pickle,json,collections,datetime as dt,statistics
from load import D, PKL
_data=None
def data():
    global _data
    if _data is None: _data=pickle.load(open(PKL,'rb'))
    return _data
CASES=json.load(open(D+'cases.json'))['cases']
def inj_ns(c): return dt.datetime.fromisoformat(c['inject_time'].replace('Z','+00:00')).timestamp()*1e9
class Trace:
    __slots__=('tid','spans','root','start','children','byid')
def build(rows):
    bytid=collections.defaultdict(list)
    for r in rows: bytid[r['tid']].append(r)
    traces=[]
    for tid,sp in bytid.items():
        t=Trace(); t.tid=tid; t.spans=sp; t.byid={s['sid']:s for s in sp}
        t.children=collections.defaultdict(list)
        for s in sp: t.children[s['pid']].append(s)
        roots=[s for s in sp if s['pid']=='' or s['pid'] not in t.byid]
        t.root=min(roots,key=lambda s:s['st']); t.start=min(s['st'] for s in sp)
        traces.append(t)
    traces.sort(key=lambda t:t.start)
    return traces
def split(c):
    tr=build(data()[c['file']]); i=inj_ns(c)
    return [t for t in tr if t.start<i],[t for t in tr if t.start>=i]
def entry(t):
    # first SERVER span of a non-gateway service, or root name
    best=None
    for s in t.spans:
        if s['kind']==2 and s['svc']!=t.root['svc']:
            if best is None or s['st']<best['st']: best=s
    return (best['svc']+' '+best['name']) if best else t.root['name']
def dur(s): return (s['et']-s['st'])/1e6
def q(v,p):
    if not v: return float('nan')
    v=sorted(v); k=(len(v)-1)*p; f=int(k); c=min(f+1,len(v)-1); return v[f]+(v[c]-v[f])*(k-f)
def dur_span(trs): 
    if not trs: return 1
    return max((max(s['et'] for s in t.spans)) for t in trs)/1e9 - min(t.start for t in trs)/1e9

"""Per-service before/after statistics. Each stat: f(pre_traces, post_traces) -> {svc: score}; bigger = more suspicious."""
import math
from common import *

def services(pre,post):
    return {s['svc'] for T in (pre,post) for t in T for s in t.spans}

def local_desc(t,s):
    """names of in-service descendants of s plus outgoing calls (callee svc+name), stops at service boundary"""
    acc=[]
    stack=[s]
    while stack:
        x=stack.pop()
        for c in t.children[x['sid']]:
            if c['svc']==s['svc']: acc.append(c['name']); stack.append(c)
            else: acc.append('->'+c['svc']+' '+c['name'])
    return acc

def self_time(t,s):
    ch=t.children[s['sid']]
    # union of child intervals
    iv=sorted((c['st'],c['et']) for c in ch); tot=0; cur=None
    for a,b in iv:
        a=max(a,s['st']); b=min(b,s['et'])
        if b<=a: continue
        if cur is None or a>cur[1]:
            if cur: tot+=cur[1]-cur[0]
            cur=[a,b]
        else: cur[1]=max(cur[1],b)
    if cur: tot+=cur[1]-cur[0]
    return (s['et']-s['st']-tot)/1e6

def per_endpoint(T,fn,kind=2):
    d=collections.defaultdict(list)
    for t in T:
        for s in t.spans:
            if s['kind']==kind: d[(s['svc'],s['name'])].append(fn(t,s))
    return d

MINN=3
def _agg(pre,post,fn,cmp,kind=2,minn=MINN):
    A=per_endpoint(pre,fn,kind); B=per_endpoint(post,fn,kind)
    sc=collections.defaultdict(float)
    for k in set(A)&set(B):
        if len(A[k])<minn or len(B[k])<minn: continue
        v=cmp(A[k],B[k])
        if v>sc[k[0]]: sc[k[0]]=v
    return sc
def lr(a,b): return math.log((b+1e-3)/(a+1e-3))

# 1. duration
def s1_med_up(pre,post):   return _agg(pre,post,lambda t,s:dur(s),lambda a,b: lr(q(a,.5),q(b,.5)))
def s1_med_down(pre,post): return _agg(pre,post,lambda t,s:dur(s),lambda a,b:-lr(q(a,.5),q(b,.5)))
def s1_med_abs(pre,post):  return _agg(pre,post,lambda t,s:dur(s),lambda a,b:abs(lr(q(a,.5),q(b,.5))))
def s1_p90_up(pre,post):   return _agg(pre,post,lambda t,s:dur(s),lambda a,b: lr(q(a,.9),q(b,.9)))
def s1_p90_down(pre,post): return _agg(pre,post,lambda t,s:dur(s),lambda a,b:-lr(q(a,.9),q(b,.9)))
def s1_p90_abs(pre,post):  return _agg(pre,post,lambda t,s:dur(s),lambda a,b:abs(lr(q(a,.9),q(b,.9))))
def s1_self_med_up(pre,post): return _agg(pre,post,self_time,lambda a,b: lr(q(a,.5),q(b,.5)))
def s1_p10_down(pre,post): return _agg(pre,post,lambda t,s:dur(s),lambda a,b:-lr(q(a,.1),q(b,.1)))

# 2. fewer children
def _fewer(a,b):
    m=q(a,.5)
    return sum(1 for x in b if x<m)/len(b) - sum(1 for x in a if x<m)/len(a)
def s2_fewer_share(pre,post): return _agg(pre,post,lambda t,s:len(local_desc(t,s)),_fewer)
def _zero(a,b): return sum(1 for x in b if x==0)/len(b)-sum(1 for x in a if x==0)/len(a)
def s2_out_zero(pre,post): return _agg(pre,post,lambda t,s:sum(1 for x in local_desc(t,s) if x.startswith('->')),_zero)
def s2_nch_abs(pre,post):  return _agg(pre,post,lambda t,s:len(local_desc(t,s)),lambda a,b:abs(lr(statistics.mean(a),statistics.mean(b))))
def s2_nch_down(pre,post): return _agg(pre,post,lambda t,s:len(local_desc(t,s)),lambda a,b:-lr(statistics.mean(a),statistics.mean(b)))
def s2_out_down(pre,post): return _agg(pre,post,lambda t,s:sum(1 for x in local_desc(t,s) if x.startswith('->')),lambda a,b:-lr(statistics.mean(a),statistics.mean(b)))

# 3. structural novelty, deepest novel node blamed
def _sig(t,s): return tuple(sorted({(c['svc'],c['name']) for c in t.children[s['sid']]}))
def _lsig(t,s): return tuple(sorted(set(local_desc(t,s))))
def _depth(t,s):
    d=0
    while s['pid'] in t.byid: s=t.byid[s['pid']]; d+=1
    return d
def _novel_blame(pre,post,sigf,deepest=True,kinds=(1,2,3)):
    known=collections.defaultdict(set)
    for t in pre:
        for s in t.spans:
            if s['kind'] in kinds: known[(s['svc'],s['name'])].add(sigf(t,s))
    sc=collections.Counter()
    for t in post:
        nov=[s for s in t.spans if s['kind'] in kinds and sigf(t,s) not in known.get((s['svc'],s['name']),())]
        if not nov: continue
        if deepest:
            md=max(_depth(t,s) for s in nov)
            blamed={s['svc'] for s in nov if _depth(t,s)==md}
        else: blamed={s['svc'] for s in nov}
        for b in blamed: sc[b]+=1/len(blamed)
    n=max(1,len(post))
    return {k:v/n for k,v in sc.items()}
def _half(pre,post,f):
    # novelty rate post-vs-pre minus novelty rate pre2-vs-pre1 (pre split in time halves)
    h=len(pre)//2
    a=f(pre,post); b=f(pre[:h],pre[h:])
    return {k:a.get(k,0)-b.get(k,0) for k in set(a)|set(b)}
def s3_novel_direct_deepest(pre,post): return _novel_blame(pre,post,_sig,True)
def s3_novel_local_deepest(pre,post):  return _novel_blame(pre,post,_lsig,True,kinds=(2,))
def s3_novel_local_all(pre,post):      return _novel_blame(pre,post,_lsig,False,kinds=(2,))
def s3_novel_direct_deepest_adj(pre,post): return _half(pre,post,lambda a,b:_novel_blame(a,b,_sig,True))
def s3_novel_local_deepest_adj(pre,post):  return _half(pre,post,lambda a,b:_novel_blame(a,b,_lsig,True,kinds=(2,)))
# 3b. signature distribution shift (TVD) per SERVER endpoint
def _tvd(a,b):
    ca=collections.Counter(a); cb=collections.Counter(b)
    return 0.5*sum(abs(ca[k]/len(a)-cb[k]/len(b)) for k in set(ca)|set(cb))
def s3_sig_tvd(pre,post): return _agg(pre,post,_lsig,_tvd,minn=5)
# 3c. path divergence vs same entry op: for each post trace, is its set of (svc,name) SERVER spans seen before for that entry?
def _path(t): return frozenset((s['svc'],s['name']) for s in t.spans if s['kind']==2)
def s3_path_diverge(pre,post):
    known=collections.defaultdict(list)
    for t in pre: known[entry(t)].append(_path(t))
    sc=collections.Counter()
    for t in post:
        P=_path(t); K=known.get(entry(t))
        if not K or P in K: continue
        # nearest known path
        best=min(K,key=lambda k:len(k^P))
        missing=best-P
        # blame callers (parents) of missing server spans in the reference: approximate by services present in P whose
        # endpoints are in best and which are deepest; use: services of P that in 'best' have missing children -> need tree; use svc of missing
        blamed=set()
        present_svcs={s for s,_ in P}
        for (sv,nm) in missing: blamed.add(sv)
        extra=P-best
        for (sv,nm) in extra: blamed.add(sv)
        for b in blamed: sc[b]+=1/len(blamed)
    n=max(1,len(post))
    return {k:v/n for k,v in sc.items()}

# 4. request rates
def _cnt(T,kind):
    c=collections.Counter()
    for t in T:
        for s in t.spans:
            if s['kind']==kind: c[s['svc']]+=1
    return c
def s4_rate_per_trace_abs(pre,post):
    a=_cnt(pre,2); b=_cnt(post,2); na=len(pre); nb=len(post)
    return {k:abs(lr(a[k]/na,b[k]/nb)) for k in set(a)|set(b) if a[k]+b[k]>=6}
def s4_rate_per_trace_down(pre,post):
    a=_cnt(pre,2); b=_cnt(post,2); na=len(pre); nb=len(post)
    return {k:-lr(a[k]/na,b[k]/nb) for k in set(a)|set(b) if a[k]+b[k]>=6}
def s4_fanout_down(pre,post):
    a2=_cnt(pre,2); b2=_cnt(post,2); a3=_cnt(pre,3); b3=_cnt(post,3)
    return {k:-lr(a3[k]/a2[k],b3[k]/b2[k]) for k in set(a2)&set(b2) if a3[k]+b3[k]>=6}
def s4_fanout_abs(pre,post):
    a2=_cnt(pre,2); b2=_cnt(post,2); a3=_cnt(pre,3); b3=_cnt(post,3)
    return {k:abs(lr(a3[k]/a2[k],b3[k]/b2[k])) for k in set(a2)&set(b2) if a3[k]+b3[k]>=6}
# calls into svc relative to its callers' requests: count(svc SERVER)/count(caller SERVER spans of the caller endpoints)
def s4_calls_vs_callers(pre,post):
    def ratios(T):
        num=collections.Counter(); den=collections.Counter()
        callers=collections.defaultdict(set)
        for t in T:
            for s in t.spans:
                if s['kind']==2 and s['pid'] in t.byid:
                    # find caller SERVER span
                    p=t.byid[s['pid']]
                    while p['kind']!=2 and p['pid'] in t.byid: p=t.byid[p['pid']]
                    if p['kind']==2 and p['svc']!=s['svc']: num[(p['svc'],p['name'],s['svc'],s['name'])]+=1
        ep=collections.Counter((s['svc'],s['name']) for t in T for s in t.spans if s['kind']==2)
        return num,ep
    na,ea=ratios(pre); nb,eb=ratios(post)
    sc=collections.defaultdict(float)
    for k in set(na)|set(nb):
        ca=ea[(k[0],k[1])]; cb=eb[(k[0],k[1])]
        if ca<3 or cb<3: continue
        v=abs(lr(na[k]/ca,nb[k]/cb))
        for sv in (k[2],):
            sc[sv]=max(sc[sv],v)
    return sc

# 5. shorter traces
def s5_short_traces(pre,post):
    sizes=collections.defaultdict(list)
    for t in pre: sizes[entry(t)].append(len(t.spans))
    med={k:q(v,.5) for k,v in sizes.items()}
    def share(T):
        tot=collections.Counter(); sh=collections.Counter()
        for t in T:
            m=med.get(entry(t))
            if m is None: continue
            short=len(t.spans)<0.8*m
            for sv in {s['svc'] for s in t.spans}:
                tot[sv]+=1; sh[sv]+=short
        return tot,sh
    ta,sa=share(pre); tb,sb=share(post)
    return {k:sb[k]/tb[k]-sa[k]/max(1,ta[k]) for k in tb if tb[k]>=3}
def s5_size_change(pre,post):
    # per service: mean over endpoints of relative change of mean trace size for traces containing the service (abs)
    def sz(T):
        d=collections.defaultdict(list)
        for t in T:
            for sv in {s['svc'] for s in t.spans}: d[(entry(t),sv)].append(len(t.spans))
        return d
    A=sz(pre);B=sz(post); sc=collections.defaultdict(float)
    for k in set(A)&set(B):
        if len(A[k])<3 or len(B[k])<3: continue
        sc[k[1]]=max(sc[k[1]],-lr(statistics.mean(A[k]),statistics.mean(B[k])))
    return sc

# 6. new / vanished span names
def s6_new_names(pre,post):
    a={(s['svc'],s['name']) for t in pre for s in t.spans}
    c=collections.Counter(s['svc'] for t in post for s in t.spans if (s['svc'],s['name']) not in a)
    n=max(1,len(post)); return {k:v/n for k,v in c.items()}
def s6_vanished(pre,post):
    a=collections.Counter((s['svc'],s['name']) for t in pre for s in t.spans)
    b=collections.Counter((s['svc'],s['name']) for t in post for s in t.spans)
    f=len(post)/max(1,len(pre)); sc=collections.Counter()
    for k,v in a.items():
        if b[k]==0 and v*f>=3: sc[k[0]]+=v*f
    return dict(sc)
def s6_new_plus_vanished(pre,post):
    x=s6_new_names(pre,post); y=s6_vanished(pre,post); n=max(1,len(post))
    return {k:x.get(k,0)+y.get(k,0)/n for k in set(x)|set(y)}
# name-level rate shift (per trace), any kind, max |log| per service
def s6_name_rate_abs(pre,post):
    a=collections.Counter((s['svc'],s['name']) for t in pre for s in t.spans)
    b=collections.Counter((s['svc'],s['name']) for t in post for s in t.spans)
    na=len(pre); nb=len(post); sc=collections.defaultdict(float)
    for k in set(a)|set(b):
        if a[k]+b[k]<6: continue
        sc[k[0]]=max(sc[k[0]],abs(lr((a[k]+.5)/na,(b[k]+.5)/nb)))
    return sc

STATS=[(n,f) for n,f in globals().items() if n[:2] in ('s1','s2','s3','s4','s5','s6') and callable(f) and n[2]=='_']

# 3d. truncated call sequence: SERVER span whose ordered outgoing-callee list is a strict prefix of the modal pre list
def _calls(t,s):
    out=[]; stack=[s]
    while stack:
        x=stack.pop()
        for c in t.children[x['sid']]:
            if c['svc']==s['svc']: stack.append(c)
            else: out.append((c['st'],c['svc'],c['name']))
    return tuple((a,b) for _,a,b in sorted(out))
def _modal(pre):
    d=collections.defaultdict(collections.Counter)
    for t in pre:
        for s in t.spans:
            if s['kind']==2: d[(s['svc'],s['name'])][_calls(t,s)]+=1
    return {k:v.most_common(1)[0][0] for k,v in d.items()}
def _trunc_blame(T,modal,mode):
    sc=collections.Counter()
    for t in T:
        for s in t.spans:
            if s['kind']!=2: continue
            m=modal.get((s['svc'],s['name']))
            if not m: continue
            c=_calls(t,s)
            if len(c)<len(m) and m[:len(c)]==c:
                if mode=='self': sc[s['svc']]+=1
                elif mode=='last': sc[c[-1][0] if c else s['svc']]+=1
                elif mode=='next': sc[m[len(c)][0]]+=1
    n=max(1,len(T)); return {k:v/n for k,v in sc.items()}
def s3_trunc_self(pre,post):
    m=_modal(pre); a=_trunc_blame(pre,m,'self'); b=_trunc_blame(post,m,'self'); return {k:b.get(k,0)-a.get(k,0) for k in set(a)|set(b)}
def s3_trunc_lastcallee(pre,post):
    m=_modal(pre); a=_trunc_blame(pre,m,'last'); b=_trunc_blame(post,m,'last'); return {k:b.get(k,0)-a.get(k,0) for k in set(a)|set(b)}
def s3_trunc_nextcallee(pre,post):
    m=_modal(pre); a=_trunc_blame(pre,m,'next'); b=_trunc_blame(post,m,'next'); return {k:b.get(k,0)-a.get(k,0) for k in set(a)|set(b)}
STATS=[(n,f) for n,f in globals().items() if n[:2] in ('s1','s2','s3','s4','s5','s6') and callable(f) and n[2]=='_']

# ---- null baselines (no before/after information) ----
def b0_volume(pre,post):
    return dict(collections.Counter(s['svc'] for t in post for s in t.spans if s['kind']==2))
def b0_fanin(pre,post):
    c=collections.defaultdict(set)
    for t in post:
        for s in t.spans:
            if s['kind']==2 and s['pid'] in t.byid: c[s['svc']].add(t.tid)
    return {k:len(v) for k,v in c.items()}
def b0_random(pre,post):
    import random,hashlib
    svcs=sorted(services(pre,post)); r=random.Random(len(pre)*1000+len(post))
    return {s:r.random() for s in svcs}
STATS=[(n,f) for n,f in globals().items() if n[:2] in ('s1','s2','s3','s4','s5','s6','b0') and callable(f) and n[2]=='_']
